//! `/.well-known/openid-configuration` (global and per tenant) and `/oauth2/userinfo`.

use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::errors::ApiError;
use super::pages::{self, Language, Page, PageSet};
use super::token::{client_credentials, oauth_error};
use super::wire::{InactiveToken, JwksResponse, OAuthErrorResponse};
use super::{json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::TenantId;
use crate::flows::oauth::{authenticate_client, OAuthError, TokenError};
use crate::flows::oidc;

pub async fn discovery(app: &App, tenant: Option<TenantId>) -> Result<HttpResponse, ApiError> {
    let document = oidc::discovery(app.store.as_ref(), &app.links, tenant).await?;
    let mut response = json_response(StatusCode::OK, &document);
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}

/// The bearer token of `Authorization: Bearer …` (RFC 6750 2.1).
pub(super) fn bearer(request: &HttpRequest) -> Option<&str> {
    bearer_header(request)
}

/// The form body of `POST /oauth2/userinfo` (RFC 6750 2.2: the token as `access_token`).
#[derive(Debug, Default, Deserialize)]
struct UserInfoForm {
    access_token: Option<String>,
}

fn bearer_header(request: &HttpRequest) -> Option<&str> {
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

/// `GET` and `POST /oauth2/userinfo` (OpenID Connect Core 5.3.1: both). The access token comes
/// in `Authorization: Bearer`, or on a POST as the form's `access_token` (RFC 6750 2.2), never
/// both ways and never in the query.
pub async fn userinfo(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let form = match request.method {
        http::Method::POST => request.form::<UserInfoForm>().unwrap_or_default(),
        _ => UserInfoForm::default(),
    };
    let token = match (bearer(request), form.access_token.as_deref()) {
        (Some(token), None) => Some(token),
        (None, Some(token)) if token.len() <= 8 * MAX_SECRET_LEN => Some(token),
        _ => None,
    };
    let claims = match token {
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
                &OAuthErrorResponse {
                    error: "invalid_token",
                    error_description: "The access token is invalid or expired.",
                    error_reason: None,
                },
            );
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
    })
}

/// The query of `GET /oauth2/logout` (OpenID Connect RP-Initiated Logout section 2).
#[derive(Debug, Default, Deserialize)]
struct LogoutQuery {
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    id_token_hint: Option<String>,
    state: Option<String>,
    locale: Option<String>,
}

/// `GET /oauth2/logout`: ends the session the id token hint names and sends the browser to an
/// allowed URI of the client, or shows the signed-out page.
pub async fn logout(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let query: LogoutQuery = request.query().unwrap_or_default();
    let bounded = |value: Option<String>| value.filter(|v| v.len() <= 8 * MAX_SECRET_LEN);
    let end = oidc::logout(
        app.store.as_ref(),
        app.key_vault.as_ref(),
        oidc::LogoutRequest {
            client_id: bounded(query.client_id),
            post_logout_redirect_uri: bounded(query.post_logout_redirect_uri),
            id_token_hint: bounded(query.id_token_hint),
            state: bounded(query.state),
        },
    )
    .await?;
    Ok(match end {
        oidc::LogoutEnd::Redirect(location) => pages::redirect(&location),
        oidc::LogoutEnd::SignedOut => pages::render(
            Page {
                set: PageSet::builtin(),
                status: StatusCode::OK,
                name: "signed-out",
                language: Language::choose(query.locale.as_deref(), request),
                context: json!({}),
                cookies: Vec::new(),
                form_origins: Vec::new(),
            },
            app.entropy.as_ref(),
        ),
    })
}

/// The form of `POST /oauth2/introspect` (RFC 7662 section 2.1).
#[derive(Debug, Deserialize)]
struct IntrospectForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /oauth2/introspect` (RFC 7662), for the token's own client.
pub async fn introspect(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let form: IntrospectForm = match request.form() {
        Ok(form) => form,
        Err(_) => {
            return Ok(oauth_error(&OAuthError::new(
                "invalid_request",
                "invalid_request",
                "The form is malformed.",
            )))
        }
    };
    let credentials = match client_credentials(request, form.client_id, form.client_secret) {
        Ok(credentials) => credentials,
        Err(error) => return Ok(oauth_error(&error)),
    };
    let client = match authenticate_client(
        app.store.as_ref(),
        credentials.id.as_deref(),
        credentials.secret.as_ref(),
    )
    .await
    {
        Ok(client) => client,
        Err(TokenError::Protocol(error)) => return Ok(oauth_error(&error)),
        Err(TokenError::Flow(error)) => return Err(error.into()),
    };
    let Some(token) = form.token.filter(|t| t.len() <= 8 * MAX_SECRET_LEN) else {
        return Ok(json_response(
            StatusCode::OK,
            &InactiveToken { active: false },
        ));
    };
    let answer = oidc::introspect(
        app.store.as_ref(),
        app.key_vault.as_ref(),
        app.clock.as_ref(),
        &client,
        &token,
    )
    .await?;
    Ok(json_response(StatusCode::OK, &answer))
}

pub async fn jwks(app: &App, tenant: Option<TenantId>) -> Result<HttpResponse, ApiError> {
    let keys = match tenant {
        None => crate::flows::keys::public_keys(app.store.as_ref()).await?,
        Some(id) => crate::flows::keys::tenant_public_keys(app.store.as_ref(), id).await?,
    };
    let mut response = json_response(StatusCode::OK, &JwksResponse { keys: &keys });
    // Verifiers cache the key set; rotation keeps old keys published (S24), so an hour is safe.
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
