//! Access control lists of buckets and objects: the grants S3 expresses as canned ACLs
//! (`x-amz-acl`), grant headers (`x-amz-grant-read: id="…", uri="…"`) or an
//! `AccessControlPolicy` document. A grantee is a user (a configured access key, which is also
//! the user's canonical ID and display name), everyone (`AllUsers`) or every signed request
//! (`AuthenticatedUsers`). What a grant allows is decided in `access.rs`.

use s3s::dto;
use serde::{Deserialize, Serialize};

/// The group of everyone, signed or not.
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The group of every request signed with a configured key.
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Permission {
    fn as_str(self) -> &'static str {
        match self {
            Permission::Read => dto::Permission::READ,
            Permission::Write => dto::Permission::WRITE,
            Permission::ReadAcp => dto::Permission::READ_ACP,
            Permission::WriteAcp => dto::Permission::WRITE_ACP,
            Permission::FullControl => dto::Permission::FULL_CONTROL,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// A user: its access key.
    User(String),
    AllUsers,
    AuthenticatedUsers,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// The grants of a bucket or an object. Its owner may do anything with it whatever the grants
/// say; `private` is the owner's FULL_CONTROL alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    pub grants: Vec<Grant>,
}

impl Acl {
    pub fn private(owner: &str) -> Acl {
        Acl {
            grants: vec![Grant {
                grantee: Grantee::User(owner.to_string()),
                permission: Permission::FullControl,
            }],
        }
    }

    pub fn to_dto(&self) -> dto::Grants {
        self.grants
            .iter()
            .map(|grant| {
                let grantee = match &grant.grantee {
                    Grantee::User(id) => dto::Grantee {
                        type_: dto::Type::from_static(dto::Type::CANONICAL_USER),
                        id: Some(id.clone()),
                        display_name: Some(id.clone()),
                        email_address: None,
                        uri: None,
                    },
                    Grantee::AllUsers | Grantee::AuthenticatedUsers => dto::Grantee {
                        type_: dto::Type::from_static(dto::Type::GROUP),
                        id: None,
                        display_name: None,
                        email_address: None,
                        uri: Some(
                            if grant.grantee == Grantee::AllUsers {
                                ALL_USERS
                            } else {
                                AUTHENTICATED_USERS
                            }
                            .to_string(),
                        ),
                    },
                };
                dto::Grant {
                    grantee: Some(grantee),
                    permission: Some(dto::Permission::from_static(grant.permission.as_str())),
                }
            })
            .collect()
    }
}

/// The owner element of an answer: a user's canonical ID and display name are its key.
pub fn owner(id: &str) -> dto::Owner {
    dto::Owner {
        display_name: Some(id.to_string()),
        id: Some(id.to_string()),
    }
}
