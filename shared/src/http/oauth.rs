//! The magic link's page (`/oauth2/passwordless/{code}`) and the token endpoint
//! (`/oauth2/token`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::pages::{self, form_pairs, form_value, Csrf, Language, Page};
use super::{json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::Secret;
use crate::flows::oauth::{self, Completion, LinkView, OAuthError, TokenRequest, Tokens};

/// A link code as it may appear in a path: what the generators make (URL-safe base64,
/// letters, digits), within the secret length limit. Anything else is an expired link (S10).
fn link_code(raw: &str) -> Option<Secret> {
    let well_formed = !raw.is_empty()
        && raw.len() <= MAX_SECRET_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| Secret::new(raw))
}

fn query_pairs(request: &HttpRequest) -> Vec<(String, String)> {
    form_pairs(request.query.as_deref().unwrap_or("").as_bytes())
}

fn language(request: &HttpRequest) -> Language {
    let query = query_pairs(request);
    Language::choose(form_value(&query, "locale"), request)
}

fn expired_page(app: &App, request: &HttpRequest) -> HttpResponse {
    pages::render(
        Page {
            status: StatusCode::NOT_FOUND,
            name: "expired",
            language: language(request),
            context: json!({}),
            cookies: Vec::new(),
        },
        app.entropy.as_ref(),
    )
}

fn continue_page(
    app: &App,
    request: &HttpRequest,
    code: &Secret,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let (token, cookie) = Csrf::for_public_url(&app.links.0)
        .token(request, app.entropy.as_ref())
        .ok_or_else(|| ApiError::Internal("no randomness for a CSRF token".into()))?;
    Ok(pages::render(
        Page {
            status,
            name: "link",
            language: language(request),
            context: json!({
                "action": format!("/oauth2/passwordless/{}", code.expose()),
                "csrf": token,
            }),
            cookies: cookie.into_iter().collect(),
        },
        app.entropy.as_ref(),
    ))
}

/// `GET` and `HEAD`: a page, never a login (S14). Mail scanners fetch links; only the button's
/// POST completes one.
pub async fn link_page(
    app: &App,
    request: &HttpRequest,
    raw: &str,
) -> Result<HttpResponse, ApiError> {
    let Some(code) = link_code(raw) else {
        return Ok(expired_page(app, request));
    };
    match oauth::view_link(app.store.as_ref(), app.clock.as_ref(), &code).await? {
        LinkView::Continue => continue_page(app, request, &code, StatusCode::OK),
        LinkView::Expired => Ok(expired_page(app, request)),
    }
}

/// `POST` from the link's page: completes the login and redirects to the client with an
/// authorization code (S16: no code of ours in the final URL).
pub async fn complete_link(
    app: &App,
    request: &HttpRequest,
    raw: &str,
) -> Result<HttpResponse, ApiError> {
    let Some(code) = link_code(raw) else {
        return Ok(expired_page(app, request));
    };
    let form = form_pairs(&request.body);
    if !Csrf::for_public_url(&app.links.0).holds(request, form_value(&form, "csrf")) {
        // A stale or missing cookie: the same page again, with a token that will hold.
        return match oauth::view_link(app.store.as_ref(), app.clock.as_ref(), &code).await? {
            LinkView::Continue => continue_page(app, request, &code, StatusCode::FORBIDDEN),
            LinkView::Expired => Ok(expired_page(app, request)),
        };
    }
    let completion = oauth::complete_link(
        app.store.as_ref(),
        app.key_vault.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        &code,
        request.source_ip.map(|ip| ip.to_string()),
    )
    .await?;
    Ok(match completion {
        Completion::Redirect(location) => pages::redirect(&location),
        Completion::Expired => expired_page(app, request),
        Completion::Refused(reason) => pages::render(
            Page {
                status: StatusCode::BAD_REQUEST,
                name: "error",
                language: language(request),
                context: json!({"detail": reason.to_string()}),
                cookies: Vec::new(),
            },
            app.entropy.as_ref(),
        ),
    })
}

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
    Ok(TokenRequest {
        grant_type: field("grant_type"),
        code: field("code")
            .filter(|c| c.len() <= MAX_SECRET_LEN)
            .map(Secret::new),
        redirect_uri: field("redirect_uri"),
        client_id,
        client_secret,
        code_verifier: field("code_verifier"),
    })
}

fn token_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = json_response(status, body);
    response
        .headers_mut()
        .insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn oauth_error(error: &OAuthError) -> HttpResponse {
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
    .await?;
    Ok(match outcome {
        Ok(tokens) => token_response(StatusCode::OK, &tokens_body(tokens)),
        Err(error) => oauth_error(&error),
    })
}
