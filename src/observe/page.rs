//! The web page: one HTML file, one script, one style sheet, compiled into the binary. No build
//! step, nothing loaded from elsewhere (the Content-Security-Policy forbids it anyway).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/observer.js");
const STYLE: &str = include_str!("page/observer.css");

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `GET /`
pub(crate) async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}

/// `GET /assets/observer.js`
pub(crate) async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /assets/observer.css`
pub(crate) async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}
