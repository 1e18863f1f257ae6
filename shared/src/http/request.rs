//! A request as every entry point hands it over: the local server, a Lambda event, a test.

use bytes::Bytes;
use http::{HeaderMap, Method};
use std::net::IpAddr;

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
    /// The pairs of the query string, decoded (its length is bounded where requests arrive).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect()
    }

    /// The first value of one query parameter.
    pub fn query_value(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}
