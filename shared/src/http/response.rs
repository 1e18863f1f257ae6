//! Responses every handler builds: JSON with FusionAuth's content type, or an empty body.

use bytes::Bytes;
use http::StatusCode;

pub type HttpResponse = http::Response<Bytes>;

/// A JSON response with FusionAuth's content type.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut response = http::Response::new(Bytes::from(body.to_string()));
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

pub fn empty_response(status: StatusCode) -> HttpResponse {
    let mut response = http::Response::new(Bytes::new());
    *response.status_mut() = status;
    response
}
