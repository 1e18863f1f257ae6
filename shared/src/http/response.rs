//! Responses every handler builds: JSON with FusionAuth's content type, or an empty body.

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

pub type HttpResponse = http::Response<Bytes>;

/// A JSON response with FusionAuth's content type; `body` is a wire object (`wire.rs`).
pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> HttpResponse {
    let (status, bytes) = match serde_json::to_vec(body) {
        Ok(bytes) => (status, bytes),
        Err(error) => {
            // Only a map with keys that are not strings fails, and no wire object has one.
            tracing::error!(%error, "a response body could not be written");
            (StatusCode::INTERNAL_SERVER_ERROR, b"{}".to_vec())
        }
    };
    let mut response = http::Response::new(Bytes::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// Adds each cookie as a `Set-Cookie` header; one that is no header value is left out (the
/// cookies are built here from checked values, so none is).
pub(crate) fn append_set_cookies(
    response: &mut HttpResponse,
    cookies: impl IntoIterator<Item = String>,
) {
    for cookie in cookies {
        if let Ok(value) = http::HeaderValue::from_str(&cookie) {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, value);
        }
    }
}

pub(crate) fn empty_response(status: StatusCode) -> HttpResponse {
    let mut response = http::Response::new(Bytes::new());
    *response.status_mut() = status;
    response
}
