//! Access control lists of buckets and objects: the grants S3 expresses as canned ACLs
//! (`x-amz-acl`), grant headers (`x-amz-grant-read: id="…", uri="…"`) or an
//! `AccessControlPolicy` document. A grantee is a user (a configured access key, which is also
//! the user's canonical ID and display name), everyone (`AllUsers`) or every signed request
//! (`AuthenticatedUsers`). What a grant allows is decided in `access.rs`.

use crate::error::{Error, Result};
use s3s::dto;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The group of everyone, signed or not.
pub const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// The group of every request signed with a configured key.
pub const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
/// Most grants one ACL holds (S3's limit).
pub const MAX_GRANTS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
}

impl Permission {
    fn parse(name: &str) -> Result<Permission> {
        Ok(match name {
            dto::Permission::READ => Permission::Read,
            dto::Permission::WRITE => Permission::Write,
            dto::Permission::READ_ACP => Permission::ReadAcp,
            dto::Permission::WRITE_ACP => Permission::WriteAcp,
            dto::Permission::FULL_CONTROL => Permission::FullControl,
            other => {
                return Err(Error::MalformedAcl {
                    detail: format!("unknown permission {other:?}"),
                });
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Permission::Read => dto::Permission::READ,
            Permission::Write => dto::Permission::WRITE,
            Permission::ReadAcp => dto::Permission::READ_ACP,
            Permission::WriteAcp => dto::Permission::WRITE_ACP,
            Permission::FullControl => dto::Permission::FULL_CONTROL,
        }
    }

    /// Whether holding `self` gives `wanted`.
    pub fn covers(self, wanted: Permission) -> bool {
        self == Permission::FullControl || self == wanted
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

    /// A canned ACL, for an object of a bucket owned by `bucket_owner` (the same as `owner`
    /// for a bucket's own ACL).
    pub fn canned(name: &str, owner: &str, bucket_owner: &str) -> Result<Acl> {
        let mut acl = Acl::private(owner);
        let mut add = |grantee: Grantee, permission: Permission| {
            acl.grants.push(Grant {
                grantee,
                permission,
            })
        };
        match name {
            dto::ObjectCannedACL::PRIVATE => {}
            dto::ObjectCannedACL::PUBLIC_READ => add(Grantee::AllUsers, Permission::Read),
            dto::ObjectCannedACL::PUBLIC_READ_WRITE => {
                add(Grantee::AllUsers, Permission::Read);
                add(Grantee::AllUsers, Permission::Write);
            }
            dto::ObjectCannedACL::AUTHENTICATED_READ => {
                add(Grantee::AuthenticatedUsers, Permission::Read)
            }
            dto::ObjectCannedACL::BUCKET_OWNER_READ => {
                if bucket_owner != owner {
                    add(Grantee::User(bucket_owner.to_string()), Permission::Read);
                }
            }
            dto::ObjectCannedACL::BUCKET_OWNER_FULL_CONTROL => {
                if bucket_owner != owner {
                    add(
                        Grantee::User(bucket_owner.to_string()),
                        Permission::FullControl,
                    );
                }
            }
            other => {
                return Err(Error::NotImplemented {
                    what: format!("the canned ACL {other}"),
                });
            }
        }
        Ok(acl)
    }

    /// The ACL the `x-amz-grant-*` headers give (`None` when there are none), each a list of
    /// `id="…"` or `uri="…"` grantees.
    pub fn from_grant_headers(
        headers: &[(Permission, Option<&str>)],
        users: &BTreeSet<String>,
    ) -> Result<Option<Acl>> {
        let mut grants = Vec::new();
        let mut any = false;
        for (permission, value) in headers {
            let Some(value) = value else { continue };
            any = true;
            for grantee in value.split(',').map(str::trim).filter(|g| !g.is_empty()) {
                let (kind, quoted) =
                    grantee.split_once('=').ok_or_else(|| Error::MalformedAcl {
                        detail: format!("grantee {grantee:?} is not type=\"value\""),
                    })?;
                let value = quoted.trim().trim_matches('"');
                let grantee = match kind.trim().to_ascii_lowercase().as_str() {
                    "id" => user_grantee(value, users)?,
                    "uri" => group_grantee(value)?,
                    "emailaddress" => return Err(by_email()),
                    other => {
                        return Err(Error::MalformedAcl {
                            detail: format!("unknown grantee type {other:?}"),
                        });
                    }
                };
                grants.push(Grant {
                    grantee,
                    permission: *permission,
                });
            }
        }
        if !any {
            return Ok(None);
        }
        checked(Acl { grants }).map(Some)
    }

    /// The ACL of an `AccessControlPolicy` document. Its Owner, when given, must be the
    /// resource's owner: the owner of a bucket or object does not change.
    pub fn from_policy(
        policy: &dto::AccessControlPolicy,
        owner: &str,
        users: &BTreeSet<String>,
    ) -> Result<Acl> {
        if let Some(given) = policy.owner.as_ref().and_then(|o| o.id.as_deref())
            && given != owner
        {
            return Err(Error::AccessDenied {
                detail: "the ACL's owner is not the owner of the resource".into(),
            });
        }
        let mut grants = Vec::new();
        for grant in policy.grants.iter().flatten() {
            let grantee = grant.grantee.as_ref().ok_or_else(|| Error::MalformedAcl {
                detail: "a grant without a grantee".into(),
            })?;
            let permission = grant
                .permission
                .as_ref()
                .ok_or_else(|| Error::MalformedAcl {
                    detail: "a grant without a permission".into(),
                })?;
            let grantee = match grantee.type_.as_str() {
                dto::Type::CANONICAL_USER => {
                    user_grantee(grantee.id.as_deref().unwrap_or(""), users)?
                }
                dto::Type::GROUP => group_grantee(grantee.uri.as_deref().unwrap_or(""))?,
                dto::Type::AMAZON_CUSTOMER_BY_EMAIL => return Err(by_email()),
                other => {
                    return Err(Error::MalformedAcl {
                        detail: format!("unknown grantee type {other:?}"),
                    });
                }
            };
            grants.push(Grant {
                grantee,
                permission: Permission::parse(permission.as_str())?,
            });
        }
        checked(Acl { grants })
    }

    /// Whether a grant gives anything to everyone or to every signed request.
    pub fn is_public(&self) -> bool {
        self.grants.iter().any(|grant| {
            matches!(
                grant.grantee,
                Grantee::AllUsers | Grantee::AuthenticatedUsers
            )
        })
    }

    /// Whether a grant gives `wanted` to `user` (`None`: an anonymous request). With
    /// `ignore_public`, grants to the two groups count for nothing.
    pub fn allows(&self, user: Option<&str>, wanted: Permission, ignore_public: bool) -> bool {
        self.grants.iter().any(|grant| {
            let applies = match &grant.grantee {
                Grantee::User(id) => user == Some(id.as_str()),
                Grantee::AllUsers => !ignore_public,
                Grantee::AuthenticatedUsers => !ignore_public && user.is_some(),
            };
            applies && grant.permission.covers(wanted)
        })
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

fn checked(acl: Acl) -> Result<Acl> {
    if acl.grants.len() > MAX_GRANTS {
        return Err(Error::MalformedAcl {
            detail: format!("an ACL holds at most {MAX_GRANTS} grants"),
        });
    }
    Ok(acl)
}

fn user_grantee(id: &str, users: &BTreeSet<String>) -> Result<Grantee> {
    if !users.contains(id) {
        return Err(Error::InvalidArgument {
            detail: format!("Invalid id: no user {id:?}"),
        });
    }
    Ok(Grantee::User(id.to_string()))
}

fn group_grantee(uri: &str) -> Result<Grantee> {
    match uri {
        ALL_USERS => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS => Ok(Grantee::AuthenticatedUsers),
        other => Err(Error::InvalidArgument {
            detail: format!("Invalid group uri {other:?}"),
        }),
    }
}

fn by_email() -> Error {
    Error::InvalidArgument {
        detail: "grants by e-mail address are not supported: grant by id".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeSet<String> {
        ["alice", "bob"].into_iter().map(String::from).collect()
    }

    #[test]
    fn canned_acls_grant_what_s3_grants() {
        let read = |acl: &Acl, user: Option<&str>| acl.allows(user, Permission::Read, false);
        let private = Acl::canned("private", "alice", "alice").expect("canned");
        assert!(read(&private, Some("alice")) && !read(&private, Some("bob")));
        assert!(!private.is_public());
        let public = Acl::canned("public-read", "alice", "alice").expect("canned");
        assert!(read(&public, None) && read(&public, Some("bob")));
        assert!(!public.allows(None, Permission::Write, false));
        assert!(!public.allows(None, Permission::Read, true), "ignored");
        let writable = Acl::canned("public-read-write", "alice", "alice").expect("canned");
        assert!(writable.allows(None, Permission::Write, false));
        let authenticated = Acl::canned("authenticated-read", "alice", "alice").expect("canned");
        assert!(read(&authenticated, Some("bob")) && !read(&authenticated, None));
        let for_owner = Acl::canned("bucket-owner-read", "bob", "alice").expect("canned");
        assert!(read(&for_owner, Some("alice")));
        assert!(Acl::canned("log-delivery-write", "a", "a").is_err());
    }

    #[test]
    fn grant_headers_name_known_users_and_groups() {
        let acl = Acl::from_grant_headers(
            &[
                (
                    Permission::Read,
                    Some(&format!("id=\"bob\", uri=\"{ALL_USERS}\"")),
                ),
                (Permission::WriteAcp, None),
            ],
            &users(),
        )
        .expect("valid")
        .expect("given");
        assert!(acl.allows(Some("bob"), Permission::Read, false));
        assert!(acl.is_public());
        assert!(
            Acl::from_grant_headers(&[(Permission::Read, Some("id=\"carol\""))], &users()).is_err()
        );
        assert!(
            Acl::from_grant_headers(
                &[(Permission::Read, Some("emailAddress=\"a@b\""))],
                &users()
            )
            .is_err()
        );
        assert!(
            Acl::from_grant_headers(&[(Permission::Read, None)], &users())
                .expect("valid")
                .is_none()
        );
    }
}
