//! The observer's errors: why it could not start ([`ObserverError`]), and the JSON error every
//! bad request gets ([`ApiError`]).

use std::net::SocketAddr;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::sample::VERSION;

/// Why the observer could not start (its start hook fails with this).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObserverError {
    /// The address could not be bound (in use, not local, not allowed).
    #[error("the observer cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A token was configured but it is empty: that would allow anyone to act.
    #[error("the observer's token is empty: set a non-empty token, or none for read-only")]
    EmptyToken,
}

/// A request the observer refuses: a status, a stable machine-readable code and a sentence.
/// Its body is `{"version": 1, "error": {"status": 404, "code": "unknown_service",
/// "message": "..."}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

#[derive(Serialize)]
struct ErrorDoc<'a> {
    version: u32,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let doc = ErrorDoc {
            version: VERSION,
            error: ErrorBody {
                status: self.status.as_u16(),
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, Json(doc)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"modo-observer\""),
            );
        }
        response
    }
}
