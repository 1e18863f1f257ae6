//! `/api/passwordless/{start,send,login}`.

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::json::{parse_object, Fields};
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::code::LoginStrategy;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::user::{LoginIdType, MAX_LOGIN_ID_LEN};
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, Secret};
use crate::flows::passwordless::{self, LoginRequest, Presented, SendOutcome, StartRequest};
use crate::flows::tenancy::TenantScope;

/// The largest `state` a start may carry, serialized (S11).
pub const MAX_STATE_BYTES: usize = 8 * 1024;

fn start_request(body: &Map<String, Value>) -> Result<StartRequest, ApiError> {
    let mut fields = Fields::new(body);
    let application_id = fields.required_id("applicationId", ApplicationId::parse);
    let login_id = fields.required_string("loginId", MAX_LOGIN_ID_LEN);
    let login_id_types = match fields.optional_string_list("loginIdTypes") {
        None => Some(LoginIdType::DEFAULT_ORDER.to_vec()),
        Some(names) => {
            let parsed: Option<Vec<LoginIdType>> =
                names.iter().map(|n| LoginIdType::parse(n)).collect();
            match parsed {
                Some(types) if !types.is_empty() => Some(types),
                _ => {
                    fields.push(FieldError::invalid(
                        "loginIdTypes",
                        "[loginIdTypes] may contain only email and username.",
                    ));
                    None
                }
            }
        }
    };
    let strategy = match fields.optional_string("loginStrategy", 64) {
        None => Some(LoginStrategy::default()),
        Some(name) => {
            let parsed = LoginStrategy::parse(&name);
            if parsed.is_none() {
                fields.push(FieldError::invalid(
                    "loginStrategy",
                    "[loginStrategy] must be ClickableLink or FormField.",
                ));
            }
            parsed
        }
    };
    let state = fields.optional_object("state", MAX_STATE_BYTES);
    fields.finish()?;
    match (application_id, login_id, login_id_types, strategy) {
        (Some(application_id), Some(login_id), Some(login_id_types), Some(strategy)) => {
            Ok(StartRequest {
                application_id,
                login_id,
                login_id_types,
                strategy,
                state,
            })
        }
        _ => Err(ApiError::Internal(
            "start validation let an incomplete request through".into(),
        )),
    }
}

pub async fn start(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let start = start_request(&parse_object(&request.body)?)?;
    let started = passwordless::start(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        start,
    )
    .await?;
    let mut body = json!({"code": started.code.expose()});
    if let Some(one_time_code) = &started.one_time_code {
        body["oneTimeCode"] = json!(one_time_code.expose());
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// Both forms: `{code}`, or the deprecated `{applicationId, loginId, state}` that starts and
/// sends in one call and needs an API key (ours, S31). Either way 200 whether or not anything
/// was sent (S9).
pub async fn send(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let body = parse_object(&request.body)?;
    let source = source_address(request);
    let outcome = if !body.contains_key("code")
        && (body.contains_key("applicationId") || body.contains_key("loginId"))
    {
        if !scope.authenticated {
            return Err(ApiError::Unauthorized);
        }
        let mut start = start_request(&body)?;
        start.strategy = LoginStrategy::ClickableLink;
        passwordless::start_and_send(
            app.store.as_ref(),
            app.mailer.as_ref(),
            app.clock.as_ref(),
            app.entropy.as_ref(),
            &app.links,
            &app.send_pacer,
            scope,
            start,
            source.as_deref(),
        )
        .await?
    } else {
        let mut fields = Fields::new(&body);
        let code = fields.required_string("code", MAX_SECRET_LEN);
        fields.finish()?;
        passwordless::send_code(
            app.store.as_ref(),
            app.mailer.as_ref(),
            app.clock.as_ref(),
            &app.links,
            &Secret::new(code.unwrap_or_default()),
            source.as_deref(),
        )
        .await?
    };
    if outcome == SendOutcome::NothingToSend {
        tracing::info!("passwordless send: nothing to send");
    }
    Ok(empty_response(StatusCode::OK))
}

/// The address rate limits count (S27): the one the platform vouches for (API Gateway's source
/// IP, the socket peer, or the nearest hop a trusted proxy added), never a header or body field
/// the client writes.
fn source_address(request: &HttpRequest) -> Option<String> {
    request.source_ip.map(|ip| ip.to_string())
}

pub async fn login(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let body = parse_object(&request.body)?;
    let mut fields = Fields::new(&body);
    let code = fields.required_string("code", MAX_SECRET_LEN);
    let one_time_code = fields.optional_string("oneTimeCode", MAX_SECRET_LEN);
    let application_id = fields.optional_id("applicationId", ApplicationId::parse);
    let ip_address = fields.optional_string("ipAddress", 64);
    let no_jwt = fields.optional_bool("noJWT").unwrap_or(false);
    fields.optional_object("metaData", 4096);
    fields.optional_string("twoFactorTrustId", MAX_SECRET_LEN);
    fields.finish()?;
    let login = LoginRequest {
        code_hash: Secret::new(code.unwrap_or_default()).hash(),
        presented: match one_time_code {
            Some(typed) => Presented::OneTimeCode(Secret::new(typed).hash()),
            None => Presented::Link,
        },
        application_id,
        // The body's address is recorded in events, as FusionAuth does; limits never read it.
        ip_address: ip_address.or_else(|| source_address(request)),
        no_jwt,
    };
    let done = passwordless::login(
        app.store.as_ref(),
        app.key_vault.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        login,
    )
    .await?;
    let mut body = json!({"user": done.user});
    if let (Some(token), Some(expiration)) = (&done.token, done.token_expiration_instant) {
        body["token"] = json!(token);
        body["tokenExpirationInstant"] = json!(expiration);
    }
    if let (Some(refresh), Some(id)) = (&done.refresh_token, done.refresh_token_id) {
        body["refreshToken"] = json!(refresh.expose());
        body["refreshTokenId"] = json!(id);
    }
    if let Some(state) = done.state {
        body["state"] = Value::Object(state);
    }
    let status = if done.registered {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json_response(status, &body))
}
