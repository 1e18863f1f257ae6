//! The glue between API Gateway events (through `lambda_http`) and [`super::handle_as`].

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use super::routes::Route;
use super::{handle_as, Caller, HttpRequest};
use crate::app::App;

/// Turns a Lambda HTTP event into the shared request shape.
pub fn to_http_request(event: Request) -> HttpRequest {
    let request_id = event
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .unwrap_or_else(|| "local".to_owned());
    let source_ip = match event.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.http.source_ip.as_deref().and_then(|ip| ip.parse().ok())
        }
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx
            .identity
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse().ok()),
        _ => None,
    };
    let path = event.raw_http_path().to_owned();
    let query = event.uri().query().map(str::to_owned);
    let (parts, body) = event.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    HttpRequest {
        method: parts.method,
        path,
        query,
        headers: parts.headers,
        body,
        source_ip,
        request_id,
    }
}

/// Answers one Lambda event with the routes this function serves.
pub async fn handle_event(
    app: &App,
    routes: &[Route],
    event: Request,
) -> Result<Response<Body>, std::convert::Infallible> {
    let response = handle_as(app, to_http_request(event), Some(routes), Caller::Client).await;
    Ok(response.map(|bytes| {
        if bytes.is_empty() {
            Body::Empty
        } else {
            match String::from_utf8(bytes.to_vec()) {
                Ok(text) => Body::Text(text),
                Err(e) => Body::Binary(e.into_bytes()),
            }
        }
    }))
}

/// The whole life of the function named `function` in the route table: logs, `App` built once
/// before the first event (SDK clients and the first TLS handshake included), then events.
pub async fn run(function: &str) -> Result<(), lambda_http::Error> {
    crate::telemetry::init(
        std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")),
    );
    let routes = super::routes::routes_of(function);
    if routes.is_empty() {
        return Err(
            format!("no route in the route table belongs to the function {function}").into(),
        );
    }
    let app = App::from_env().await?;
    let (app, routes) = (&app, routes.as_slice());
    lambda_http::run(lambda_http::service_fn(move |event: Request| {
        handle_event(app, routes, event)
    }))
    .await
}
