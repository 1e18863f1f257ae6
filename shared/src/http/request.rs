//! A request as every entry point hands it over: the local server, a Lambda event, a test.

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde::de::DeserializeOwned;
use std::net::IpAddr;

use super::form::{self, FormError};

/// One HTTP request as every entry point sees it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub source_ip: Option<IpAddr>,
    /// The id that ties the logs of one request together (Lambda's request id, or a fresh one).
    pub request_id: String,
}

impl HttpRequest {
    /// The form-encoded body read into `T` (the rules are in `form.rs`).
    pub fn form<T: DeserializeOwned>(&self) -> Result<T, FormError> {
        form::decode(&self.body)
    }

    /// The query string read into `T`, by the same rules as a form.
    pub fn query<T: DeserializeOwned>(&self) -> Result<T, FormError> {
        form::decode(self.query.as_deref().unwrap_or_default().as_bytes())
    }
}
