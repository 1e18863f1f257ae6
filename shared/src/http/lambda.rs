//! The glue between API Gateway events (through `lambda_http`) and [`super::handle_as`].

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use super::routes::RouteSet;
use super::{handle_as, Caller, HttpRequest};
use crate::app::App;
use crate::config::Config;

/// Turns a Lambda HTTP event into the shared request shape.
pub(crate) fn to_http_request(event: Request) -> HttpRequest {
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

/// Answers one Lambda event with the routes of the function `S`.
pub(crate) async fn handle_event<S: RouteSet>(
    app: &App,
    event: Request,
) -> Result<Response<Body>, std::convert::Infallible> {
    let response = handle_as::<S>(app, to_http_request(event), Caller::Client).await;
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

/// [`handle_event`] for a function named at run time (the tests' sample events); `None` for a
/// name that is no function. Each function's own binary calls [`run`] with its type instead, so
/// that it links only its own routes.
pub async fn handle_event_of(app: &App, function: &str, event: Request) -> Option<Response<Body>> {
    use super::routes::functions::*;
    let response = match function {
        "passwordless-start" => handle_event::<PasswordlessStart>(app, event).await,
        "passwordless-send" => handle_event::<PasswordlessSend>(app, event).await,
        "passwordless-login" => handle_event::<PasswordlessLogin>(app, event).await,
        "oauth2-pages" => handle_event::<OAuth2Pages>(app, event).await,
        "oauth2-token" => handle_event::<OAuth2Token>(app, event).await,
        "oidc" => handle_event::<Oidc>(app, event).await,
        "management" => handle_event::<Management>(app, event).await,
        _ => return None,
    };
    match response {
        Ok(response) => Some(response),
        Err(never) => match never {},
    }
}

/// The whole life of the function `S`: logs, `App` built once before the first event (SDK
/// clients and the first TLS handshakes included), then events.
/// `package` is the binary's package name, which must be the function's name in the table.
pub async fn run<S: RouteSet>(package: &str) -> Result<(), lambda_http::Error> {
    crate::telemetry::init(
        std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")),
    );
    if S::FUNCTION != Some(package) {
        return Err(format!(
            "the package {package} is not the function {:?}",
            S::FUNCTION
        )
        .into());
    }
    let app = App::for_lambda::<S>(&Config::from_env()?).await?;
    let app = &app;
    lambda_http::run(lambda_http::service_fn(move |event: Request| {
        handle_event::<S>(app, event)
    }))
    .await
}
