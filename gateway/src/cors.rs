//! Cross-origin resource sharing: a bucket's CORS rules (Put/Get/DeleteBucketCors), the answer
//! to a browser's preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`, which
//! s3s does not route: the front layer answers it from the rules), and the CORS headers of
//! every other answer to a request with an `Origin`, presigned ones included. The first rule
//! that matches the origin and the method (and, for a preflight, every requested header)
//! decides; with none, a preflight is 403 and other answers carry no CORS headers.

use crate::error::{Error, Result};
use s3s::dto;
use serde::{Deserialize, Serialize};

/// Most rules in one configuration (S3's limit).
pub const MAX_RULES: usize = 100;
/// Most bytes of all the rules' names, origins, methods and headers together (S3 caps the
/// document at 64 KiB).
pub const MAX_CONFIGURATION_BYTES: usize = 64 * 1024;
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<i32>,
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::InvalidRequest {
        detail: detail.into(),
    }
}

/// The rules of a PutBucketCors, checked: methods S3 knows, at most one `*` per origin and
/// allowed header, and the limits.
pub fn rules_of(configuration: &dto::CORSConfiguration) -> Result<Vec<CorsRule>> {
    let rules = &configuration.cors_rules;
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(invalid(format!(
            "a CORS configuration has between 1 and {MAX_RULES} rules"
        )));
    }
    let mut size = 0usize;
    let mut out = Vec::with_capacity(rules.len());
    for rule in rules {
        if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
            return Err(Error::MalformedXml {
                detail: "each CORS rule needs an AllowedOrigin and an AllowedMethod".into(),
            });
        }
        for method in &rule.allowed_methods {
            if !METHODS.contains(&method.as_str()) {
                return Err(invalid(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {method}"
                )));
            }
        }
        let headers = rule.allowed_headers.clone().unwrap_or_default();
        for pattern in rule.allowed_origins.iter().chain(&headers) {
            if pattern.matches('*').count() > 1 {
                return Err(invalid(format!(
                    "{pattern:?} can not have more than one wildcard"
                )));
            }
        }
        let rule = CorsRule {
            id: rule.id.clone(),
            allowed_origins: rule.allowed_origins.clone(),
            allowed_methods: rule.allowed_methods.clone(),
            allowed_headers: headers,
            expose_headers: rule.expose_headers.clone().unwrap_or_default(),
            max_age_seconds: rule.max_age_seconds,
        };
        size += rule.id.as_deref().map_or(0, str::len)
            + [
                &rule.allowed_origins,
                &rule.allowed_methods,
                &rule.allowed_headers,
                &rule.expose_headers,
            ]
            .into_iter()
            .flatten()
            .map(String::len)
            .sum::<usize>();
        if size > MAX_CONFIGURATION_BYTES {
            return Err(invalid(format!(
                "a CORS configuration holds at most {MAX_CONFIGURATION_BYTES} bytes"
            )));
        }
        out.push(rule);
    }
    Ok(out)
}

pub fn rules_to_dto(rules: &[CorsRule]) -> dto::CORSRules {
    rules
        .iter()
        .map(|rule| dto::CORSRule {
            id: rule.id.clone(),
            allowed_origins: rule.allowed_origins.clone(),
            allowed_methods: rule.allowed_methods.clone(),
            allowed_headers: (!rule.allowed_headers.is_empty())
                .then(|| rule.allowed_headers.clone()),
            expose_headers: (!rule.expose_headers.is_empty()).then(|| rule.expose_headers.clone()),
            max_age_seconds: rule.max_age_seconds,
        })
        .collect()
}

/// `text` against a pattern with at most one `*` (any run of characters).
fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (pattern, text) = if ignore_case {
        (pattern.to_ascii_lowercase(), text.to_ascii_lowercase())
    } else {
        (pattern.to_string(), text.to_string())
    };
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.len() >= head.len() + tail.len() && text.starts_with(head) && text.ends_with(tail)
        }
    }
}

impl CorsRule {
    fn allows(&self, origin: &str, method: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|pattern| wildcard(pattern, origin, false))
            && self.allowed_methods.iter().any(|allowed| allowed == method)
    }

    fn allows_headers(&self, requested: &[String]) -> bool {
        requested.iter().all(|header| {
            self.allowed_headers
                .iter()
                .any(|pattern| wildcard(pattern, header, true))
        })
    }
}

/// The CORS headers of an answer that `rule` allows: the origin (`*` for a rule open to any),
/// the rule's methods, exposed headers and max age.
fn answer_headers(rule: &CorsRule, origin: &str, headers: &mut http::HeaderMap) {
    let any_origin = rule.allowed_origins.iter().any(|pattern| pattern == "*");
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    if any_origin {
        set("access-control-allow-origin", "*");
    } else {
        set("access-control-allow-origin", origin);
        set("access-control-allow-credentials", "true");
    }
    set(
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        set(
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(max_age) = rule.max_age_seconds {
        set("access-control-max-age", &max_age.to_string());
    }
}

fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The answer to a preflight request for a bucket with `rules` (`None`: no configuration).
pub fn preflight(rules: Option<&[CorsRule]>, request: &http::HeaderMap) -> Result<http::HeaderMap> {
    let origin = header(request, "origin").ok_or_else(|| Error::BadRequest {
        detail: "Insufficient information. Origin request header needed.".into(),
    })?;
    let method =
        header(request, "access-control-request-method").ok_or_else(|| Error::BadRequest {
            detail: "Invalid Access-Control-Request-Method: null".into(),
        })?;
    let rules = rules.ok_or_else(|| Error::CorsForbidden {
        detail: "CORSResponse: CORS is not enabled for this bucket.".into(),
    })?;
    let requested: Vec<String> = header(request, "access-control-request-headers")
        .unwrap_or("")
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    let rule = rules
        .iter()
        .find(|rule| rule.allows(origin, method) && rule.allows_headers(&requested))
        .ok_or_else(|| Error::CorsForbidden {
            detail: "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.".into(),
        })?;
    let mut headers = http::HeaderMap::new();
    answer_headers(rule, origin, &mut headers);
    if !requested.is_empty()
        && let Ok(value) = http::HeaderValue::from_str(&requested.join(", "))
    {
        headers.insert("access-control-allow-headers", value);
    }
    headers.insert(
        http::header::VARY,
        http::HeaderValue::from_static(
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        ),
    );
    Ok(headers)
}

/// The CORS headers for the answer to an actual request (`method`, with an `Origin`) to a
/// bucket with `rules`: those of the first rule allowing its origin and method, if any.
pub fn actual(
    rules: &[CorsRule],
    method: &http::Method,
    request: &http::HeaderMap,
) -> Option<http::HeaderMap> {
    let origin = header(request, "origin")?;
    let rule = rules
        .iter()
        .find(|rule| rule.allows(origin, method.as_str()))?;
    let mut headers = http::HeaderMap::new();
    answer_headers(rule, origin, &mut headers);
    headers.insert(http::header::VARY, http::HeaderValue::from_static("Origin"));
    Some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        CorsRule {
            id: None,
            allowed_origins: strings(origins),
            allowed_methods: strings(methods),
            allowed_headers: strings(headers),
            expose_headers: vec!["ETag".into()],
            max_age_seconds: Some(600),
        }
    }

    fn request(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, http::HeaderValue::from_str(value).expect("a value"));
        }
        headers
    }

    #[test]
    fn origins_and_headers_match_with_one_wildcard() {
        assert!(wildcard(
            "https://*.example.com",
            "https://a.example.com",
            false
        ));
        assert!(!wildcard(
            "https://*.example.com",
            "https://example.com",
            false
        ));
        assert!(wildcard("x-amz-*", "X-Amz-Date", true));
        assert!(wildcard("*", "", false));
    }

    #[test]
    fn a_preflight_is_answered_by_the_first_matching_rule() {
        let rules = [
            rule(
                &["https://app.example"],
                &["PUT"],
                &["content-type", "x-amz-*"],
            ),
            rule(&["*"], &["GET"], &[]),
        ];
        let answer = preflight(
            Some(&rules),
            &request(&[
                ("origin", "https://app.example"),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "Content-Type, X-Amz-Date"),
            ]),
        )
        .expect("allowed");
        assert_eq!(answer["access-control-allow-origin"], "https://app.example");
        assert_eq!(answer["access-control-allow-methods"], "PUT");
        assert_eq!(
            answer["access-control-allow-headers"],
            "content-type, x-amz-date"
        );
        assert_eq!(answer["access-control-max-age"], "600");
        let any = preflight(
            Some(&rules),
            &request(&[
                ("origin", "https://else"),
                ("access-control-request-method", "GET"),
            ]),
        )
        .expect("allowed");
        assert_eq!(any["access-control-allow-origin"], "*");
        for refused in [
            request(&[
                ("origin", "https://else"),
                ("access-control-request-method", "PUT"),
            ]),
            request(&[
                ("origin", "https://app.example"),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "authorization"),
            ]),
        ] {
            assert!(matches!(
                preflight(Some(&rules), &refused),
                Err(Error::CorsForbidden { .. })
            ));
        }
        assert!(matches!(
            preflight(
                None,
                &request(&[("origin", "o"), ("access-control-request-method", "GET")])
            ),
            Err(Error::CorsForbidden { .. })
        ));
        assert!(matches!(
            preflight(
                Some(&rules),
                &request(&[("access-control-request-method", "GET")])
            ),
            Err(Error::BadRequest { .. })
        ));
    }
}
