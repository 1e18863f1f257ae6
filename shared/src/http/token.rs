//! The token endpoint (`POST /oauth2/token`, RFC 6749 section 3.2): the form read into a
//! grant at the edge, the client's credentials, and the answer (tokens or an RFC 6749 section
//! 5.2 error).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::pages::{form_pairs, form_value};
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

/// The client's id and secret, from `Authorization: Basic` or the form, never both ways.
pub(crate) fn client_credentials(
    request: &HttpRequest,
    form: &[(String, String)],
) -> Result<(Option<String>, Option<Secret>), OAuthError> {
    let invalid = |description: &'static str| OAuthError {
        error: "invalid_request",
        reason: "invalid_request",
        description,
    };
    let field = |name: &str| {
        form_value(form, name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut client_id = field("client_id");
    let mut client_secret = field("client_secret").map(Secret::new);
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
    Ok((client_id, client_secret))
}

fn token_request(request: &HttpRequest) -> Result<TokenRequest, OAuthError> {
    let form = form_pairs(&request.body);
    let invalid = |description: &'static str| OAuthError {
        error: "invalid_request",
        reason: "invalid_request",
        description,
    };
    // RFC 6749 3.2: a parameter may appear once.
    for name in [
        "grant_type",
        "code",
        "redirect_uri",
        "client_id",
        "client_secret",
        "code_verifier",
        "refresh_token",
    ] {
        if form.iter().filter(|(k, _)| k == name).count() > 1 {
            return Err(invalid("A parameter appears more than once."));
        }
    }
    let field = |name: &str| {
        form_value(&form, name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (client_id, client_secret) = client_credentials(request, &form)?;
    let secret = |name: &str| {
        field(name)
            .filter(|s| s.len() <= MAX_SECRET_LEN)
            .map(Secret::new)
    };
    let grant = match field("grant_type").as_deref() {
        Some("authorization_code") => match (secret("code"), field("redirect_uri")) {
            (Some(code), Some(redirect_uri)) => Grant::AuthorizationCode(CodeGrant {
                code,
                redirect_uri,
                code_verifier: field("code_verifier"),
            }),
            _ => {
                return Err(OAuthError::new(
                    "invalid_request",
                    "missing_code",
                    "code and redirect_uri are required.",
                ))
            }
        },
        Some("refresh_token") => match secret("refresh_token") {
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
    Ok(TokenRequest {
        grant,
        client: ClientCredentials {
            id: client_id,
            secret: client_secret,
        },
    })
}

fn token_response(status: StatusCode, body: &Value) -> HttpResponse {
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
        &json!({"error": error.error, "error_description": error.description, "error_reason": error.reason}),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"oauth2\""),
        );
    }
    response
}

fn tokens_body(tokens: Tokens) -> Value {
    let mut body = Map::new();
    body.insert("access_token".into(), json!(tokens.access_token));
    body.insert("expires_in".into(), json!(tokens.expires_in));
    if let Some(id_token) = tokens.id_token {
        body.insert("id_token".into(), json!(id_token));
    }
    if let Some(refresh) = tokens.refresh_token {
        body.insert("refresh_token".into(), json!(refresh.expose()));
    }
    if let Some(id) = tokens.refresh_token_id {
        body.insert("refresh_token_id".into(), json!(id));
    }
    if let Some(scope) = tokens.scope {
        body.insert("scope".into(), json!(scope));
    }
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("userId".into(), json!(tokens.user_id));
    Value::Object(body)
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
        Ok(tokens) => Ok(token_response(StatusCode::OK, &tokens_body(tokens))),
        Err(TokenError::Protocol(error)) => Ok(oauth_error(&error)),
        Err(TokenError::Flow(error)) => Err(error.into()),
    }
}
