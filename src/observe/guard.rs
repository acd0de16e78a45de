//! What every request passes before a route: the guard (paths, host, announced body size,
//! security headers), and the token check that actions need.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::http::{St, too_large};

/// The Content-Security-Policy of every response: the page loads its own script and style
/// and talks to its own origin, nothing else; no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Runs before every route: refuses `.` and `..` path segments (also percent-encoded), foreign
/// `Host` names and bodies announced larger than the limit (before reading them); adds the
/// security headers.
pub(super) async fn guard(State(shared): St, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > shared.max_body as u64) {
        return too_large(shared.max_body).into_response();
    }
    if has_dot_segment(request.uri().path()) {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_path",
            "paths with '.' or '..' segments are refused",
        )
        .into_response();
    }
    if let Some(hosts) = &shared.hosts {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(host_name);
        if let Some(host) = host
            && !hosts.contains(&host)
        {
            return ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "bad_host",
                format!(
                    "host {host:?} is not served here (allowed: {}); see ObserverConfig::allow_host",
                    hosts.join(", ")
                ),
            )
            .into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The host name of a `Host` header value, lowercase, without the port.
fn host_name(value: &str) -> String {
    let value = value.trim().to_ascii_lowercase();
    if value.starts_with('[') {
        // An IPv6 literal: `[::1]:6464`.
        return match value.find(']') {
            Some(end) => value[..=end].to_owned(),
            None => value,
        };
    }
    match value.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_owned(),
        _ => value,
    }
}

/// Whether `path` has a `.` or `..` segment, once percent-decoded (a decoded `/` or `\` also
/// separates segments).
fn has_dot_segment(path: &str) -> bool {
    let decoded = percent_decode(path);
    decoded
        .split(|&b| b == b'/' || b == b'\\')
        .any(|segment| segment == b"." || segment == b"..")
}

fn percent_decode(s: &str) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(hi * 16 + lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The token check. The token is kept only as its SHA-256 digest; a presented token is hashed
/// too and the two 32-byte digests are compared in constant time (`subtle`), so neither the
/// comparison's time nor the token's length tells anything about the token.
pub(crate) struct Auth {
    digest: Option<[u8; 32]>,
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(data));
    out
}

impl Auth {
    pub(crate) fn new(token: Option<&str>) -> Auth {
        Auth {
            digest: token.map(|t| sha256(t.as_bytes())),
        }
    }

    pub(crate) fn is_read_only(&self) -> bool {
        self.digest.is_none()
    }

    /// Whether `headers` carry the token.
    ///
    /// # Errors
    /// `403 read_only` when no token is configured; `401 unauthorized` when the header is
    /// missing, not a bearer token, or the wrong token.
    pub(super) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.digest else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "read_only",
                "no token is configured: the observer is read-only (start it with \
                 ObserverConfig::token to allow actions)",
            ));
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "actions need the header 'Authorization: Bearer <token>'",
                )
            })?;
        if bool::from(sha256(presented.as_bytes()).ct_eq(expected)) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong token",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_are_found_also_when_encoded() {
        for bad in [
            "/..",
            "/a/../b",
            "/a/./b",
            "/api/v1/services/%2e%2e/stop",
            "/a/%2E%2e/b",
            "/a/..%2fb",
            "/a/..%5cb",
            "/a/%2e",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for good in [
            "/",
            "/api/v1/graph",
            "/a/...b",
            "/a/b..",
            "/a/%2",
            "/a/%zz",
            "/a.b/c",
        ] {
            assert!(!has_dot_segment(good), "{good}");
        }
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("127.0.0.1:6464"), "127.0.0.1");
        assert_eq!(host_name("LocalHost"), "localhost");
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
        assert_eq!(host_name("evil.example:6464"), "evil.example");
    }

    #[test]
    fn the_token_check() {
        let mut headers = HeaderMap::new();
        let read_only = Auth::new(None);
        assert_eq!(
            read_only.check(&headers).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let auth = Auth::new(Some("s3cret"));
        assert_eq!(
            auth.check(&headers).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        for (value, ok) in [
            ("Bearer s3cret", true),
            ("bearer s3cret", true),
            ("Bearer  s3cret ", true),
            ("Bearer s3cre", false),
            ("Bearer s3cret2", false),
            ("Basic s3cret", false),
            ("s3cret", false),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(auth.check(&headers).is_ok(), ok, "{value}");
        }
    }
}
