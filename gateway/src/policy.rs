//! Bucket policies, the subset the gateway enforces: statements that `Allow` or `Deny` the
//! actions `s3:GetObject`, `s3:PutObject`, `s3:DeleteObject` and `s3:ListBucket` (or `s3:*`,
//! and patterns like `s3:Get*` over those four) to everyone (`"*"`) or to users, on resources
//! of the bucket (`arn:aws:s3:::bucket`, `arn:aws:s3:::bucket/prefix*`, with `*` and `?`
//! wildcards). A Deny that matches wins over every Allow. Anything outside the subset
//! (`Condition`, `NotPrincipal`, `NotAction`, `NotResource`, other actions) is refused with
//! MalformedPolicy naming it, never ignored: a policy is enforced as written or not stored.

use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeSet;

/// Largest policy document (S3's limit for a bucket policy).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;
/// Most statements in one policy.
pub const MAX_STATEMENTS: usize = 100;
/// Most actions, principals or resources in one statement.
pub const MAX_ENTRIES: usize = 100;

const RESOURCE_PREFIX: &str = "arn:aws:s3:::";

/// What a statement can allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PolicyAction {
    GetObject,
    PutObject,
    DeleteObject,
    ListBucket,
}

impl PolicyAction {
    const ALL: [PolicyAction; 4] = [
        PolicyAction::GetObject,
        PolicyAction::PutObject,
        PolicyAction::DeleteObject,
        PolicyAction::ListBucket,
    ];

    fn name(self) -> &'static str {
        match self {
            PolicyAction::GetObject => "s3:GetObject",
            PolicyAction::PutObject => "s3:PutObject",
            PolicyAction::DeleteObject => "s3:DeleteObject",
            PolicyAction::ListBucket => "s3:ListBucket",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Principals {
    Everyone,
    Users(BTreeSet<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    principals: Principals,
    actions: BTreeSet<PolicyAction>,
    /// Patterns over `bucket` or `bucket/key`, the ARN prefix removed.
    resources: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

fn malformed(detail: impl Into<String>) -> Error {
    Error::MalformedPolicy {
        detail: detail.into(),
    }
}

/// A string or a list of strings (at most [`MAX_ENTRIES`]).
fn strings(value: &Value, what: &str) -> Result<Vec<String>> {
    let list = match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .map(|item| {
                item.as_str().map(str::to_string).ok_or_else(|| {
                    malformed(format!("{what} must be a string or a list of strings"))
                })
            })
            .collect::<Result<_>>()?,
        _ => {
            return Err(malformed(format!(
                "{what} must be a string or a list of strings"
            )));
        }
    };
    if list.is_empty() || list.len() > MAX_ENTRIES {
        return Err(malformed(format!(
            "{what} must name between 1 and {MAX_ENTRIES} entries"
        )));
    }
    Ok(list)
}

/// Whether `text` matches `pattern`, where `*` is any run of characters and `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

impl Policy {
    /// Parses and checks a policy for `bucket`: its resources must be in the bucket, its
    /// principals `*` or, when `users` is given, configured users (a stored policy is read
    /// without that check: a user removed from the configuration since matches no request).
    pub fn parse(text: &str, bucket: &str, users: Option<&BTreeSet<String>>) -> Result<Policy> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(malformed(format!(
                "the policy is larger than {MAX_POLICY_BYTES} bytes"
            )));
        }
        let document: Value = serde_json::from_str(text)
            .map_err(|error| malformed(format!("the policy is not JSON: {error}")))?;
        let Value::Object(document) = document else {
            return Err(malformed("the policy must be a JSON object"));
        };
        for (name, value) in &document {
            match name.as_str() {
                "Version" => match value.as_str() {
                    Some("2012-10-17" | "2008-10-17") => {}
                    _ => return Err(malformed("Version must be 2012-10-17 or 2008-10-17")),
                },
                "Id" | "Statement" => {}
                other => return Err(malformed(format!("unknown policy element {other:?}"))),
            }
        }
        let statements = match document.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => {
                return Err(malformed(
                    "Statement must be an object or a list of objects",
                ));
            }
        };
        if statements.is_empty() || statements.len() > MAX_STATEMENTS {
            return Err(malformed(format!(
                "a policy has between 1 and {MAX_STATEMENTS} statements"
            )));
        }
        let statements = statements
            .into_iter()
            .map(|statement| Statement::parse(statement, bucket, users))
            .collect::<Result<_>>()?;
        Ok(Policy { statements })
    }

    /// What the policy says about `action` by `user` (`None`: anonymous) on `resource`
    /// (`bucket` or `bucket/key`): Deny if a Deny matches, else Allow if an Allow matches.
    pub fn evaluate(
        &self,
        user: Option<&str>,
        action: PolicyAction,
        resource: &str,
    ) -> Option<Effect> {
        let mut verdict = None;
        for statement in &self.statements {
            if statement.matches(user, action, resource) {
                match statement.effect {
                    Effect::Deny => return Some(Effect::Deny),
                    Effect::Allow => verdict = Some(Effect::Allow),
                }
            }
        }
        verdict
    }

    /// Whether the policy allows something to everyone (S3's "public" policy).
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|statement| {
            statement.effect == Effect::Allow && statement.principals == Principals::Everyone
        })
    }
}

impl Statement {
    fn parse(value: &Value, bucket: &str, users: Option<&BTreeSet<String>>) -> Result<Statement> {
        let Value::Object(fields) = value else {
            return Err(malformed("a statement must be a JSON object"));
        };
        for name in fields.keys() {
            match name.as_str() {
                "Sid" | "Effect" | "Principal" | "Action" | "Resource" => {}
                "Condition" | "NotPrincipal" | "NotAction" | "NotResource" => {
                    return Err(malformed(format!(
                        "{name} is not supported by this gateway"
                    )));
                }
                other => return Err(malformed(format!("unknown statement element {other:?}"))),
            }
        }
        let effect = match fields.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(malformed("Effect must be Allow or Deny")),
        };
        let principals = parse_principals(
            fields
                .get("Principal")
                .ok_or_else(|| malformed("a statement needs a Principal"))?,
            users,
        )?;
        let mut actions = BTreeSet::new();
        for name in strings(
            fields
                .get("Action")
                .ok_or_else(|| malformed("a statement needs an Action"))?,
            "Action",
        )? {
            // An exact name must be one of the four; a pattern (`s3:*`, `s3:Get*`, `*`)
            // stands for those of the four it matches, and must match one.
            let lowered = name.to_ascii_lowercase();
            let matched: Vec<PolicyAction> = PolicyAction::ALL
                .into_iter()
                .filter(|action| {
                    lowered == "*" || glob(&lowered, &action.name().to_ascii_lowercase())
                })
                .collect();
            if matched.is_empty() {
                return Err(malformed(format!(
                    "the action {name} is not supported by this gateway (s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket)"
                )));
            }
            actions.extend(matched);
        }
        let mut resources = Vec::new();
        for resource in strings(
            fields
                .get("Resource")
                .ok_or_else(|| malformed("a statement needs a Resource"))?,
            "Resource",
        )? {
            let inside = resource
                .strip_prefix(RESOURCE_PREFIX)
                .filter(|rest| {
                    *rest == bucket
                        || rest
                            .strip_prefix(bucket)
                            .is_some_and(|key| key.starts_with('/'))
                })
                .ok_or_else(|| {
                    malformed(format!(
                        "Policy has invalid resource {resource:?}: it must be {RESOURCE_PREFIX}{bucket} or {RESOURCE_PREFIX}{bucket}/…"
                    ))
                })?;
            resources.push(inside.to_string());
        }
        Ok(Statement {
            effect,
            principals,
            actions,
            resources,
        })
    }

    fn matches(&self, user: Option<&str>, action: PolicyAction, resource: &str) -> bool {
        let principal = match &self.principals {
            Principals::Everyone => true,
            Principals::Users(users) => user.is_some_and(|user| users.contains(user)),
        };
        principal
            && self.actions.contains(&action)
            && self.resources.iter().any(|pattern| glob(pattern, resource))
    }
}

/// `"*"`, `{"AWS": …}` or `{"CanonicalUser": …}`, each a string or a list: `*`, a user's key,
/// or `arn:aws:iam::KEY:root`.
fn parse_principals(value: &Value, users: Option<&BTreeSet<String>>) -> Result<Principals> {
    if value.as_str() == Some("*") {
        return Ok(Principals::Everyone);
    }
    let Value::Object(kinds) = value else {
        return Err(malformed(
            "Invalid principal in policy: Principal must be \"*\" or an object",
        ));
    };
    let mut named = BTreeSet::new();
    for (kind, names) in kinds {
        if kind != "AWS" && kind != "CanonicalUser" {
            return Err(malformed(format!(
                "Invalid principal in policy: {kind} principals are not supported"
            )));
        }
        for name in strings(names, "Principal")? {
            if name == "*" {
                return Ok(Principals::Everyone);
            }
            let user = name
                .strip_prefix("arn:aws:iam::")
                .and_then(|rest| rest.strip_suffix(":root"))
                .unwrap_or(&name);
            if users.is_some_and(|users| !users.contains(user)) {
                return Err(malformed(format!(
                    "Invalid principal in policy: no user {name:?}"
                )));
            }
            named.insert(user.to_string());
        }
    }
    if named.is_empty() {
        return Err(malformed("Invalid principal in policy: none named"));
    }
    Ok(Principals::Users(named))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeSet<String> {
        ["alice", "bob"].into_iter().map(String::from).collect()
    }

    #[test]
    fn globs_match_like_s3_resource_patterns() {
        assert!(glob("b/public/*", "b/public/a/b.txt"));
        assert!(glob("b/*.jpg", "b/x/y.jpg"));
        assert!(!glob("b/*.jpg", "b/x/y.png"));
        assert!(glob("b/??.txt", "b/ab.txt") && !glob("b/??.txt", "b/abc.txt"));
        assert!(glob("*", "") && glob("b", "b") && !glob("b", "bb"));
    }

    #[test]
    fn deny_wins_and_resources_and_principals_decide() {
        let policy = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::b/public/*"},
                {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::bob:root"]},"Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]},
                {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"s3:Get*","Resource":"arn:aws:s3:::b/public/secret*"}
            ]}"#,
            "b",
            Some(&users()),
        )
        .expect("valid");
        assert!(policy.is_public());
        let get = |user, resource| policy.evaluate(user, PolicyAction::GetObject, resource);
        assert_eq!(get(None, "b/public/x"), Some(Effect::Allow));
        assert_eq!(get(None, "b/private/x"), None);
        assert_eq!(get(Some("bob"), "b/private/x"), Some(Effect::Allow));
        assert_eq!(get(Some("bob"), "b/public/secret.txt"), Some(Effect::Deny));
        assert_eq!(
            policy.evaluate(Some("bob"), PolicyAction::ListBucket, "b"),
            Some(Effect::Allow)
        );
        assert_eq!(
            policy.evaluate(Some("alice"), PolicyAction::ListBucket, "b"),
            None
        );
    }

    #[test]
    fn what_the_subset_does_not_cover_is_refused() {
        let statement = |body: &str| {
            format!(r#"{{"Statement":[{{"Effect":"Allow","Principal":"*",{body}}}]}}"#)
        };
        for refused in [
            statement(r#""Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*""#),
            statement(r#""Action":"s3:PutBucketAcl","Resource":"arn:aws:s3:::b""#),
            statement(r#""Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{}"#),
            statement(r#""Action":"s3:GetObject","Resource":"arn:aws:s3:::bb/*""#),
            statement(r#""Action":"s3:Nothing*","Resource":"arn:aws:s3:::b/*""#),
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"carol"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#.to_string(),
            r#"{"Statement":[]}"#.to_string(),
            "not json".to_string(),
            format!("{{\"Id\":\"{}\"}}", "x".repeat(MAX_POLICY_BYTES)),
        ] {
            assert!(
                matches!(Policy::parse(&refused, "b", Some(&users())), Err(Error::MalformedPolicy { .. })),
                "{refused}"
            );
        }
        let private = Policy::parse(
            r#"{"Statement":{"Effect":"Allow","Principal":{"CanonicalUser":"alice"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}}"#,
            "b",
            Some(&users()),
        )
        .expect("valid");
        assert!(!private.is_public());
    }
}
