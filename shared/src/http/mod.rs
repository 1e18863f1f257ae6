//! The edge: parsing and validating requests, API-key authentication, FusionAuth error bodies,
//! status mapping and the route table. Lambda functions and the local server both call
//! [`handle`]; this file matches a request to its route and answers what failed. The request
//! and response types are in `request.rs` and `response.rs`.

pub mod api_keys;
pub mod auth;
pub mod errors;
pub mod form;
pub mod json;
pub mod jwt;
pub mod keys;
mod login;
pub mod management;
pub mod oauth;
pub mod oidc;
pub mod pages;
pub mod passwordless;
pub mod routes;
pub mod system;
pub mod token;
pub mod two_factor;
pub mod users;
pub mod verification;
pub mod wire;

mod request;
mod response;

pub use request::HttpRequest;
pub use response::HttpResponse;
pub(crate) use response::{append_set_cookies, empty_response, json_response};

use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use tracing::{error, info, Instrument};

use crate::app::App;
use errors::ApiError;
use routes::{AllRoutes, RouteMatch, RouteSet};

/// Requests with larger bodies are refused before they are parsed (S11).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Who is calling: a client over HTTP, or a kickstart file applied by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Client,
    /// Acts as a key with no limits (a kickstart file runs with every right, as FusionAuth's does).
    Kickstart,
}

/// Answers one request from any route of the table.
pub async fn handle(app: &App, request: HttpRequest) -> HttpResponse {
    handle_as::<AllRoutes>(app, request, Caller::Client).await
}

/// Answers one request from the routes of `S` (a Lambda function serves just its own).
pub(crate) async fn handle_as<S: RouteSet>(
    app: &App,
    request: HttpRequest,
    caller: Caller,
) -> HttpResponse {
    let span = tracing::info_span!("request", request_id = %request.request_id, method = %request.method, path = %routes::loggable_path(&request.path));
    async move {
        // A panic in one request answers 500 with the request id and leaves the process, its
        // caches and its store connection serving the next request (S25).
        let outcome = AssertUnwindSafe(dispatch::<S>(app, &request, caller))
            .catch_unwind()
            .await;
        let mut response = match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                if let ApiError::Internal(detail) = &e {
                    error!(detail = %detail.chain(), "request failed");
                }
                error_response::<S>(app, &request, e)
            }
            Err(_) => {
                // The panic hook logged where it happened; its message may quote request data.
                error!("request panicked");
                error_response::<S>(app, &request, ApiError::internal("panic"))
            }
        };
        system::decorate(app, &request, &mut response).await;
        strict_transport(app, &mut response);
        info!(status = response.status().as_u16(), "request done");
        response
    }
    .instrument(span)
    .await
}

/// S34: where the public URL is https, every answer tells browsers to come back over https
/// only, for a year. Not `includeSubDomains`: other hosts under the same domain are not ours
/// to pin.
fn strict_transport(app: &App, response: &mut HttpResponse) {
    if app.links.0.starts_with("https://") {
        response.headers_mut().insert(
            http::header::STRICT_TRANSPORT_SECURITY,
            http::HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// The answer to a failed request: FusionAuth's error body, except that a server error on a
/// page a browser shows is a page too, with the request id to quote.
fn error_response<S: RouteSet>(app: &App, request: &HttpRequest, error: ApiError) -> HttpResponse {
    // Decided at compile time for a function without pages: its binary links no page.
    if const { routes::serves_pages(S::FUNCTION) } {
        let on_a_page = routes::match_route(&request.method, &request.path)
            .is_ok_and(|found| found.spec.route.answers_html());
        if on_a_page && matches!(error, ApiError::Internal(_)) {
            return pages::server_error(request, &request.request_id, app.entropy.as_ref());
        }
    }
    let method_not_allowed = matches!(error, ApiError::MethodNotAllowed);
    let mut response = error.into_response(&request.request_id);
    // RFC 9110 15.5.6: a 405 says which methods the resource has.
    if method_not_allowed {
        if let Ok(allow) = http::HeaderValue::from_str(&routes::allowed_methods(&request.path)) {
            response.headers_mut().insert(http::header::ALLOW, allow);
        }
    }
    response
}

async fn dispatch<S: RouteSet>(
    app: &App,
    request: &HttpRequest,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let RouteMatch { spec, params } = match routes::match_route(&request.method, &request.path) {
        // The matched spec names its function: no need to search the table again.
        Ok(found) if S::FUNCTION.is_none_or(|function| function == found.spec.function) => found,
        Ok(_) | Err(routes::RouteMiss::NotFound) => return Err(ApiError::NotFound),
        Err(routes::RouteMiss::MethodNotAllowed) => return Err(ApiError::MethodNotAllowed),
    };
    if request.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::body_too_large());
    }
    let scope = auth::authorize(app, request, spec.access, caller).await?;
    routes::handler::<S>(app, request, scope, spec.route, &params).await
}

#[cfg(feature = "lambda")]
pub mod lambda;
