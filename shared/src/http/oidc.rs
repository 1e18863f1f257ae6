//! `/.well-known/openid-configuration` (global and per tenant) and `/oauth2/userinfo`.

use http::{HeaderValue, StatusCode};
use serde_json::json;

use super::errors::ApiError;
use super::{json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::TenantId;
use crate::flows::oidc;

pub async fn discovery(app: &App, tenant: Option<&str>) -> Result<HttpResponse, ApiError> {
    let tenant = match tenant {
        None => None,
        Some(id) => Some(TenantId::parse(id).ok_or(ApiError::NotFound)?),
    };
    let document = oidc::discovery(app.store.as_ref(), &app.links, tenant).await?;
    let mut response = json_response(StatusCode::OK, &document);
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}

/// The bearer token of `Authorization: Bearer …` (RFC 6750 2.1).
fn bearer(request: &HttpRequest) -> Option<&str> {
    let header = request
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= 8 * MAX_SECRET_LEN)
        .then_some(token)
}

pub async fn userinfo(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let claims = match bearer(request) {
        Some(token) => {
            oidc::userinfo(
                app.store.as_ref(),
                app.key_vault.as_ref(),
                app.clock.as_ref(),
                token,
            )
            .await?
        }
        None => None,
    };
    Ok(match claims {
        Some(claims) => json_response(StatusCode::OK, &claims),
        None => {
            let mut response = json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"error": "invalid_token", "error_description": "The access token is invalid or expired."}),
            );
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
    })
}
