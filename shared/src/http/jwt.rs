//! `/api/jwt/validate` and `/api/jwt/public-key`, as FusionAuth answers them.

use http::StatusCode;
use serde_json::{json, Map, Value};

use serde::Deserialize;

use super::errors::ApiError;
use super::json::{decode_body, Checks};
use super::oidc::bearer;
use super::pages;
use super::{json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, KeyId, Secret};
use crate::flows::jwt::{self as flows, KeySelection};
use crate::flows::oauth::rotate_refresh;

/// `GET /api/jwt/validate` with `Authorization: Bearer <token>` (or FusionAuth's `JWT <token>`):
/// 200 with the claims, 401 for anything else.
pub async fn validate(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let token = bearer(request).or_else(|| {
        request
            .headers
            .get(http::header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("JWT ")
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 8 * crate::domain::secret::MAX_SECRET_LEN)
    });
    let Some(token) = token else {
        return Err(ApiError::Unauthorized);
    };
    match flows::validate(
        app.store.as_ref(),
        app.key_vault.as_ref(),
        app.clock.as_ref(),
        token,
    )
    .await?
    {
        Some(claims) => Ok(json_response(StatusCode::OK, &json!({"jwt": claims}))),
        None => Err(ApiError::Unauthorized),
    }
}

/// `GET /api/jwt/public-key?kid=…` or `?applicationId=…` (`{"publicKey": PEM}`), or with neither
/// every public key (`{"publicKeys": {kid: PEM}}`).
pub async fn public_key(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let query = request.query.as_deref().unwrap_or_default();
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let find = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let selection = match (find("kid"), find("applicationId")) {
        (Some(kid), _) => KeySelection::Kid(KeyId::parse(kid).ok_or(ApiError::NotFound)?),
        (None, Some(id)) => {
            KeySelection::Application(ApplicationId::parse(id).ok_or_else(|| {
                ApiError::field(FieldError::invalid(
                    "applicationId",
                    "[applicationId] must be a UUID.",
                ))
            })?)
        }
        (None, None) => KeySelection::All,
    };
    let single = !matches!(selection, KeySelection::All);
    let keys = flows::public_keys(app.store.as_ref(), selection).await?;
    let body = match (single, keys.first()) {
        (true, Some((_, pem))) => json!({"publicKey": pem}),
        _ => {
            let all: Map<String, Value> = keys
                .into_iter()
                .map(|(id, pem)| (id.to_string(), Value::String(pem)))
                .collect();
            json!({"publicKeys": all})
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// FusionAuth's `RefreshRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // `token`, the old access token, is not needed to rotate
struct RefreshBody {
    refresh_token: Option<String>,
    token: Option<String>,
    event_info: Option<Map<String, Value>>,
}

/// `POST /api/jwt/refresh`: the refresh token (from the body, else FusionAuth's
/// `refresh_token` cookie) rotates and a new access token answers. 404 for a token that is
/// unknown, expired, revoked or reused (a reuse revokes its family, S20).
pub async fn refresh(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let body: RefreshBody = if request.body.iter().all(u8::is_ascii_whitespace) {
        RefreshBody {
            refresh_token: None,
            token: None,
            event_info: None,
        }
    } else {
        decode_body(&request.body)?
    };
    let mut checks = Checks::new();
    let from_cookie = pages::cookie(request, "refresh_token");
    let presented = checks.text(
        "refreshToken",
        body.refresh_token.or(from_cookie),
        MAX_SECRET_LEN,
    );
    checks.finish()?;
    let presented = Secret::new(presented.unwrap_or_default());
    let rotated = rotate_refresh(
        app.store.as_ref(),
        app.key_vault.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        &presented,
        None,
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    let mut body = json!({"token": rotated.access_token});
    if let (Some(token), Some(id)) = (&rotated.refresh_token, rotated.refresh_token_id) {
        body["refreshToken"] = json!(token.expose());
        body["refreshTokenId"] = json!(id);
    }
    Ok(json_response(StatusCode::OK, &body))
}
