//! The token endpoint (`POST /oauth2/token`, RFC 6749 section 3.2): the form read into a
//! grant at the edge, the client's credentials, and the answer (tokens or an RFC 6749 section
//! 5.2 error).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderValue, Method, StatusCode};
use serde::Deserialize;

use super::errors::ApiError;
use super::form::FormError;
use super::wire::{OAuthErrorResponse, TokenResponse};
use super::{json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::Secret;
use crate::flows::oauth::{
    self, ClientCredentials, CodeGrant, Grant, OAuthError, TokenError, TokenRequest, Tokens,
};

/// The client's credentials from `Authorization: Basic` (RFC 6749 2.3.1: each part
/// form-urlencoded), if that header is used.
fn basic_credentials(request: &HttpRequest) -> Option<Result<(String, String), OAuthError>> {
    let header = request.headers.get(http::header::AUTHORIZATION)?;
    let malformed = || OAuthError {
        error: "invalid_client",
        reason: "invalid_client_authentication",
        description: "The Authorization header is malformed.",
    };
    let text = header.to_str().ok()?;
    let encoded = text
        .strip_prefix("Basic ")
        .or_else(|| text.strip_prefix("basic "))?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
        return Some(Err(malformed()));
    };
    let unescape = |part: &str| -> String {
        form_urlencoded::parse(format!("v={part}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some(Ok((unescape(id), unescape(secret))))
}

/// The client's id and secret, from `Authorization: Basic` or the form's `client_id` and
/// `client_secret`, never both ways.
pub(crate) fn client_credentials(
    request: &HttpRequest,
    mut client_id: Option<String>,
    client_secret: Option<String>,
) -> Result<ClientCredentials, OAuthError> {
    let invalid = |description: &'static str| OAuthError {
        error: "invalid_request",
        reason: "invalid_request",
        description,
    };
    let mut client_secret = client_secret.map(Secret::new);
    if let Some(basic) = basic_credentials(request) {
        let (id, secret) = basic?;
        if client_secret.is_some() {
            return Err(invalid("Use one way of client authentication."));
        }
        if client_id.as_ref().is_some_and(|named| named != &id) {
            return Err(invalid(
                "client_id differs from the Authorization header's.",
            ));
        }
        client_id = Some(id);
        client_secret = Some(Secret::new(secret));
    }
    if client_secret
        .as_ref()
        .is_some_and(|s| s.expose().len() > MAX_SECRET_LEN)
    {
        return Err(invalid("The client secret is too long."));
    }
    Ok(ClientCredentials {
        id: client_id,
        secret: client_secret,
    })
}

/// The token endpoint's form (RFC 6749 sections 4.1.3 and 6).
#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Reads the form into a grant and the client's credentials, or the RFC 6749 error for it.
fn token_request(request: &HttpRequest) -> Result<TokenRequest, OAuthError> {
    let form: TokenForm = request.form().map_err(|error| match error {
        FormError::Repeated(_) => OAuthError::new(
            "invalid_request",
            "invalid_request",
            "A parameter appears more than once.",
        ),
        _ => OAuthError::new(
            "invalid_request",
            "invalid_request",
            "The form is malformed.",
        ),
    })?;
    let client = client_credentials(request, form.client_id, form.client_secret)?;
    let secret =
        |value: Option<String>| value.filter(|s| s.len() <= MAX_SECRET_LEN).map(Secret::new);
    let grant = match form.grant_type.as_deref() {
        Some("authorization_code") => match (secret(form.code), form.redirect_uri) {
            (Some(code), Some(redirect_uri)) => Grant::AuthorizationCode(CodeGrant {
                code,
                redirect_uri,
                code_verifier: form.code_verifier,
            }),
            _ => {
                return Err(OAuthError::new(
                    "invalid_request",
                    "missing_code",
                    "code and redirect_uri are required.",
                ))
            }
        },
        Some("refresh_token") => match secret(form.refresh_token) {
            Some(refresh_token) => Grant::RefreshToken(refresh_token),
            None => {
                return Err(OAuthError::new(
                    "invalid_request",
                    "missing_refresh_token",
                    "refresh_token is required.",
                ))
            }
        },
        Some(_) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "invalid_grant_type",
                "Only the authorization_code and refresh_token grants are served.",
            ))
        }
        None => {
            return Err(OAuthError::new(
                "invalid_request",
                "missing_grant_type",
                "grant_type is required.",
            ))
        }
    };
    Ok(TokenRequest { grant, client })
}

fn token_response(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    let mut response = json_response(status, body);
    response
        .headers_mut()
        .insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub(crate) fn oauth_error(error: &OAuthError) -> HttpResponse {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = token_response(
        status,
        &OAuthErrorResponse {
            error: error.error,
            error_description: error.description,
            error_reason: Some(error.reason),
        },
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"oauth2\""),
        );
    }
    response
}

fn tokens_body(tokens: &Tokens) -> TokenResponse<'_> {
    TokenResponse {
        access_token: &tokens.access_token,
        expires_in: tokens.expires_in,
        id_token: tokens.id_token.as_deref(),
        refresh_token: tokens.refresh_token.as_ref().map(Secret::expose),
        refresh_token_id: tokens.refresh_token_id,
        scope: tokens.scope.as_deref(),
        token_type: "Bearer",
        user_id: tokens.user_id,
    }
}

/// `POST /oauth2/token` (form-encoded, RFC 6749 4.1.3).
pub async fn token(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    debug_assert_eq!(request.method, Method::POST);
    let token_request = match token_request(request) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(oauth_error(&error)),
    };
    let outcome = oauth::exchange(
        app.store.as_ref(),
        app.key_vault.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        token_request,
    )
    .await;
    match outcome {
        Ok(tokens) => Ok(token_response(StatusCode::OK, &tokens_body(&tokens))),
        Err(TokenError::Protocol(error)) => Ok(oauth_error(&error)),
        Err(TokenError::Flow(error)) => Err(error.into()),
    }
}
