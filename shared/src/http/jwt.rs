//! `/api/jwt/validate`, `/api/jwt/public-key` and `/api/jwt/refresh`, as FusionAuth answers
//! them.

use http::StatusCode;
use serde_json::{Map, Value};

use serde::Deserialize;

use super::errors::ApiError;
use super::json::{decode_optional_body, query_id, Checks};
use super::oidc::bearer;
use super::pages;
use super::wire::{
    JwtRefreshResponse, PublicKeyResponse, PublicKeysResponse, RefreshTokenResponse,
    RefreshTokenView, RefreshTokensResponse, ValidateResponse,
};
use super::{append_set_cookies, empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::ids::RefreshTokenId;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, KeyId, Secret, UserId};
use crate::flows::jwt::{self as flows, KeySelection, RevokeTarget};
use crate::flows::oauth::{rotate_refresh, Redeemer};
use crate::flows::tenancy::TenantScope;
use crate::ports::{RefreshTokenFilter, StoredRefreshToken};

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
        Some(claims) => Ok(json_response(
            StatusCode::OK,
            &ValidateResponse { jwt: &claims },
        )),
        None => Err(ApiError::Unauthorized),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyQuery {
    kid: Option<String>,
    application_id: Option<String>,
}

/// `GET /api/jwt/public-key?kid=…` or `?applicationId=…` (`{"publicKey": PEM}`), or with neither
/// every public key (`{"publicKeys": {kid: PEM}}`).
pub(crate) async fn public_key(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let query: PublicKeyQuery = request.query()?;
    let application = query_id("applicationId", query.application_id, ApplicationId::parse)?;
    let selection = match (query.kid, application) {
        (Some(kid), _) => KeySelection::Kid(KeyId::parse(&kid).ok_or(ApiError::NotFound)?),
        (None, Some(id)) => KeySelection::Application(id),
        (None, None) => KeySelection::All,
    };
    let single = !matches!(selection, KeySelection::All);
    let keys = flows::public_keys(app.store.as_ref(), selection).await?;
    Ok(match (single, keys.first()) {
        (true, Some((_, pem))) => {
            json_response(StatusCode::OK, &PublicKeyResponse { public_key: pem })
        }
        _ => json_response(
            StatusCode::OK,
            &PublicKeysResponse {
                public_keys: keys
                    .into_iter()
                    .map(|(id, pem)| (id.to_string(), Value::String(pem)))
                    .collect(),
            },
        ),
    })
}

/// FusionAuth's `RefreshRequest`.
#[derive(Debug, Default, Deserialize)]
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
    let body: RefreshBody = decode_optional_body(&request.body)?;
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
        Redeemer::Api,
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    let (refresh_token, refresh_token_id) = match (&rotated.refresh_token, rotated.refresh_token_id)
    {
        (Some(token), Some(id)) => (Some(token.expose()), Some(id)),
        _ => (None, None),
    };
    let mut response = json_response(
        StatusCode::OK,
        &JwtRefreshResponse {
            token: &rotated.access_token,
            refresh_token,
            refresh_token_id,
        },
    );
    // As FusionAuth does: the new tokens replace the browser's cookies.
    let now = app.clock.now();
    let access = Some((
        rotated.access_token.as_str(),
        now.plus_secs(rotated.expires_in),
    ));
    let refresh = refresh_token.zip(rotated.refresh_token_expires_at);
    let secure = app.links.0.starts_with("https://");
    append_set_cookies(
        &mut response,
        super::login::token_cookies(secure, now, access, refresh),
    );
    Ok(response)
}

/// FusionAuth's `RefreshToken` as management shows it. The token itself is stored only as
/// its hash, so it is never shown.
fn refresh_token_view(token: &StoredRefreshToken) -> RefreshTokenView {
    RefreshTokenView {
        id: token.id,
        application_id: token.application_id,
        tenant_id: token.tenant_id,
        user_id: token.user_id,
        insert_instant: token.start_instant,
        start_instant: token.start_instant,
        meta_data: Map::new(),
        data: Map::new(),
    }
}

/// `GET /api/jwt/refresh?userId=…`: the user's live refresh tokens; `GET /api/jwt/refresh/{id}`:
/// one of them.
pub(crate) async fn retrieve_refresh_tokens(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<RefreshTokenId>,
) -> Result<HttpResponse, ApiError> {
    if let Some(id) = id {
        let tokens = flows::refresh_tokens(
            app.store.as_ref(),
            scope,
            RefreshTokenFilter::Id(id),
            app.clock.now(),
        )
        .await?;
        let token = tokens.first().ok_or(ApiError::NotFound)?;
        return Ok(json_response(
            StatusCode::OK,
            &RefreshTokenResponse {
                refresh_token: &refresh_token_view(token),
            },
        ));
    }
    let query: RefreshTokenQuery = request.query()?;
    let user = query_id("userId", query.user_id, UserId::parse)?
        .ok_or_else(|| ApiError::field(FieldError::missing("userId")))?;
    let tokens = flows::refresh_tokens(
        app.store.as_ref(),
        scope,
        RefreshTokenFilter::User(user),
        app.clock.now(),
    )
    .await?;
    let views: Vec<RefreshTokenView> = tokens.iter().map(refresh_token_view).collect();
    Ok(json_response(
        StatusCode::OK,
        &RefreshTokensResponse {
            refresh_tokens: &views,
        },
    ))
}

/// The query of the refresh-token API: whose tokens, or which.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshTokenQuery {
    token: Option<String>,
    token_id: Option<String>,
    user_id: Option<String>,
    application_id: Option<String>,
}

/// FusionAuth's `RefreshTokenRevokeRequest`, the body form of a revoke.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // `eventInfo` is accepted and not recorded
struct RevokeBody {
    token: Option<String>,
    user_id: Option<UserId>,
    application_id: Option<ApplicationId>,
    event_info: Option<Map<String, Value>>,
}

/// `DELETE /api/jwt/refresh` with `?token=`, `?tokenId=`, `?userId=` (and `&applicationId=`),
/// `?applicationId=`, or the same in a body; `DELETE /api/jwt/refresh/{tokenId}`. Each token
/// named ends with its whole rotation family.
pub(crate) async fn revoke_refresh_tokens(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<RefreshTokenId>,
) -> Result<HttpResponse, ApiError> {
    let query: RefreshTokenQuery = request.query()?;
    let body: RevokeBody = decode_optional_body(&request.body)?;
    let token = body.token.or_else(|| {
        query
            .token
            .filter(|v| !matches!(v.as_str(), "null" | "undefined"))
    });
    let token_id = match id {
        Some(id) => Some(id),
        None => query_id("tokenId", query.token_id, RefreshTokenId::parse)?,
    };
    let user = match body.user_id {
        Some(user) => Some(user),
        None => query_id("userId", query.user_id, UserId::parse)?,
    };
    let application = match body.application_id {
        Some(application) => Some(application),
        None => query_id("applicationId", query.application_id, ApplicationId::parse)?,
    };
    let target =
        match (token, token_id, user, application) {
            (Some(token), None, None, None) => {
                let mut checks = Checks::new();
                let token = checks.text("token", Some(token), MAX_SECRET_LEN);
                checks.finish()?;
                RevokeTarget::Token(Secret::new(token.unwrap_or_default()))
            }
            (None, Some(id), None, None) => RevokeTarget::Filter(RefreshTokenFilter::Id(id)),
            (None, None, Some(user), None) => RevokeTarget::Filter(RefreshTokenFilter::User(user)),
            (None, None, Some(user), Some(application)) => {
                RevokeTarget::UserForApplication(user, application)
            }
            (None, None, None, Some(application)) => {
                RevokeTarget::Filter(RefreshTokenFilter::Application(application))
            }
            _ => return Err(ApiError::field(FieldError::invalid(
                "token",
                "Name the tokens to revoke with one of: token, tokenId, userId (optionally with \
                 applicationId), applicationId.",
            ))),
        };
    flows::revoke_refresh_tokens(app.store.as_ref(), scope, target, app.clock.now()).await?;
    Ok(empty_response(StatusCode::OK))
}

/// FusionAuth's `LogoutRequest`, in the body or the query.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // `eventInfo` is accepted and not recorded
struct LogoutBody {
    global: Option<bool>,
    refresh_token: Option<String>,
    event_info: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogoutQuery {
    global: Option<bool>,
    refresh_token: Option<String>,
}

/// `POST /api/logout`: ends the session of the refresh token in the body, the query or
/// FusionAuth's `refresh_token` cookie (with `global`, every session of its user), and clears
/// the login cookies. 200 whether or not the token was live.
pub(crate) async fn logout(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let body: LogoutBody = decode_optional_body(&request.body)?;
    let query: LogoutQuery = request.query()?;
    let token = body
        .refresh_token
        .or(query.refresh_token)
        .or_else(|| pages::cookie(request, "refresh_token"))
        .filter(|t| !t.is_empty() && t.len() <= MAX_SECRET_LEN);
    let global = body.global.or(query.global).unwrap_or(false);
    if let Some(token) = token {
        flows::logout(
            app.store.as_ref(),
            &Secret::new(token),
            global,
            app.clock.now(),
        )
        .await?;
    }
    let mut response = empty_response(StatusCode::OK);
    let secure = app.links.0.starts_with("https://");
    append_set_cookies(&mut response, super::login::cleared_token_cookies(secure));
    Ok(response)
}
