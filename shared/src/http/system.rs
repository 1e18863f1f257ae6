//! `/api/system-configuration`, the probes (`/api/health`, `/api/status`,
//! `/api/system/version`), and CORS: the preflight of every path, and the headers an allowed
//! cross-origin request gets on its answer.

use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use tracing::warn;

use super::errors::ApiError;
use super::json::decode_body;
use super::management::{patch_object, patched, required_object};
use super::wire::{StatusResponse, SystemConfigurationResponse, VersionResponse};
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::system::{CorsVerdict, SystemConfiguration};
use crate::flows::system as flows;
use crate::flows::tenancy::TenantScope;

/// FusionAuth's `SystemConfigurationRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SystemConfigurationBody {
    system_configuration: Option<SystemConfiguration>,
}

fn answer(configuration: &SystemConfiguration) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &SystemConfigurationResponse {
            system_configuration: configuration,
        },
    )
}

/// `GET /api/health`: 200 with no body while the store answers, 500 with no body when it does
/// not, as FusionAuth answers a load balancer.
pub async fn health(app: &App) -> Result<HttpResponse, ApiError> {
    Ok(match flows::store_answers(app.store.as_ref()).await {
        Ok(()) => empty_response(StatusCode::OK),
        Err(error) => {
            tracing::error!(error = %error, "health: the store does not answer");
            empty_response(StatusCode::INTERNAL_SERVER_ERROR)
        }
    })
}

/// `GET /api/status`: without a key, FusionAuth's one value saying whether it is healthy
/// (`{"status": "ok"}`, ours: FusionAuth does not document the name); 500 when the store does
/// not answer.
pub async fn status(app: &App) -> Result<HttpResponse, ApiError> {
    flows::store_answers(app.store.as_ref()).await?;
    Ok(json_response(
        StatusCode::OK,
        &StatusResponse { status: "ok" },
    ))
}

/// `GET /api/system/version` (with an API key): this build's version.
pub async fn version() -> Result<HttpResponse, ApiError> {
    Ok(json_response(
        StatusCode::OK,
        &VersionResponse {
            version: env!("CARGO_PKG_VERSION"),
        },
    ))
}

pub async fn retrieve(app: &App) -> Result<HttpResponse, ApiError> {
    let configuration = flows::system_configuration(app.store.as_ref()).await?;
    Ok(answer(&configuration))
}

/// `PUT`: the body is the whole configuration; what it leaves out takes its default.
pub async fn update(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let body: SystemConfigurationBody = decode_body(&request.body)?;
    let configuration = required_object("systemConfiguration", body.system_configuration)?;
    save(app, scope, configuration).await
}

pub async fn patch(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let patch = patch_object(&request.body, "systemConfiguration")?;
    let current = flows::system_configuration(app.store.as_ref()).await?;
    let configuration = patched(&current, patch, "systemConfiguration")?;
    save(app, scope, configuration).await
}

async fn save(
    app: &App,
    scope: &TenantScope,
    configuration: SystemConfiguration,
) -> Result<HttpResponse, ApiError> {
    let saved = flows::update_system_configuration(
        app.store.as_ref(),
        app.clock.as_ref(),
        scope,
        configuration,
    )
    .await?;
    Ok(answer(&saved))
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// An `OPTIONS` request. A CORS preflight is answered 204 with the configuration's headers, or
/// 403 with none when the origin, method or a header is not allowed (as FusionAuth's CORS
/// filter answers); any other `OPTIONS` is a method this server does not serve.
pub async fn preflight(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let (Some(origin), Some(method)) = (
        header(request, "origin"),
        header(request, "access-control-request-method"),
    ) else {
        return Err(ApiError::MethodNotAllowed);
    };
    let configuration = flows::system_configuration(app.store.as_ref()).await?;
    let verdict = configuration.cors_configuration.preflight(
        origin,
        method,
        header(request, "access-control-request-headers"),
    );
    match verdict {
        CorsVerdict::Allowed(headers) => {
            let mut response = empty_response(StatusCode::NO_CONTENT);
            add_headers(&mut response, headers);
            Ok(response)
        }
        CorsVerdict::NotApplicable | CorsVerdict::Refused => {
            Ok(empty_response(StatusCode::FORBIDDEN))
        }
    }
}

/// The CORS headers for the answer to an actual request that came with an `Origin`. Reading
/// the configuration is a cached item read; it failing leaves the answer without CORS headers
/// (the browser then withholds it) rather than failing a request that may have acted already.
pub(crate) async fn decorate(app: &App, request: &HttpRequest, response: &mut HttpResponse) {
    let Some(origin) = header(request, "origin") else {
        return;
    };
    if request.method == http::Method::OPTIONS {
        return;
    }
    let configuration = match flows::system_configuration(app.store.as_ref()).await {
        Ok(configuration) => configuration,
        Err(e) => {
            warn!(error = %e, "the CORS configuration could not be read");
            return;
        }
    };
    if let CorsVerdict::Allowed(headers) = configuration
        .cors_configuration
        .actual(origin, request.method.as_str())
    {
        add_headers(response, headers);
    }
}

fn add_headers(response: &mut HttpResponse, headers: Vec<(&'static str, String)>) {
    for (name, value) in headers {
        // Every value was checked as a header value when it was saved, or is the request's own
        // Origin header, which was one.
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
}
