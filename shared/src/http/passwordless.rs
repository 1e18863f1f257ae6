//! `/api/passwordless/{start,send,login}`.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::json::{decode_body, Checks};
use super::wire::StartResponse;
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::code::LoginStrategy;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::user::{LoginIdType, MAX_LOGIN_ID_LEN};
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, Secret};
use crate::flows::passwordless::{
    self, LoginOutcome, LoginRequest, Presented, SendOutcome, StartRequest,
};
use crate::flows::tenancy::TenantScope;

/// The largest `state` a start may carry, serialized (S11).
pub(crate) const MAX_STATE_BYTES: usize = 8 * 1024;

/// `POST /api/passwordless/start`, and the deprecated start-and-send form of send.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartBody {
    application_id: Option<ApplicationId>,
    login_id: Option<String>,
    login_id_types: Option<Vec<String>>,
    login_strategy: Option<LoginStrategy>,
    state: Option<Map<String, Value>>,
}

/// `POST /api/passwordless/send`: `{code}`, or the fields of a start (deprecated form).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendBody {
    code: Option<String>,
    application_id: Option<ApplicationId>,
    login_id: Option<String>,
    state: Option<Map<String, Value>>,
}

/// `POST /api/passwordless/login`. `newDevice` and `botDetectionScore` are FusionAuth's and
/// accepted; nothing here acts on them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct LoginBody {
    code: Option<String>,
    one_time_code: Option<String>,
    application_id: Option<ApplicationId>,
    ip_address: Option<String>,
    #[serde(rename = "noJWT")]
    no_jwt: Option<bool>,
    meta_data: Option<Map<String, Value>>,
    new_device: Option<bool>,
    bot_detection_score: Option<f64>,
    two_factor_trust_id: Option<String>,
    event_info: Option<Map<String, Value>>,
}

fn start_request(body: StartBody) -> Result<StartRequest, ApiError> {
    let mut checks = Checks::new();
    let application_id = checks.required("applicationId", body.application_id);
    let login_id = checks.text("loginId", body.login_id, MAX_LOGIN_ID_LEN);
    let login_id_types = match body.login_id_types {
        None => Some(LoginIdType::DEFAULT_ORDER.to_vec()),
        Some(names) => {
            let parsed: Option<Vec<LoginIdType>> =
                names.iter().map(|n| LoginIdType::parse(n)).collect();
            match parsed {
                Some(types) if !types.is_empty() => Some(types),
                _ => {
                    checks.push(FieldError::invalid(
                        "loginIdTypes",
                        "[loginIdTypes] may contain only email and username.",
                    ));
                    None
                }
            }
        }
    };
    let state = checks.object_within("state", body.state, MAX_STATE_BYTES);
    checks.finish()?;
    match (application_id, login_id, login_id_types) {
        (Some(application_id), Some(login_id), Some(login_id_types)) => Ok(StartRequest {
            application_id,
            login_id,
            login_id_types,
            strategy: body.login_strategy,
            state,
        }),
        _ => Err(ApiError::internal(
            "start validation let an incomplete request through",
        )),
    }
}

pub async fn start(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let start = start_request(decode_body(&request.body)?)?;
    let started = passwordless::start(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        start,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &StartResponse {
            code: started.code.expose(),
            one_time_code: started.one_time_code.as_ref().map(Secret::expose),
        },
    ))
}

/// Both forms: `{code}`, or the deprecated `{applicationId, loginId, state}` that starts and
/// sends in one call and needs an API key (ours, S31). Either way 200 whether or not anything
/// was sent (S9).
pub async fn send(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let body: SendBody = decode_body(&request.body)?;
    let source = source_address(request);
    let outcome =
        if body.code.is_none() && (body.application_id.is_some() || body.login_id.is_some()) {
            if !scope.authenticated {
                return Err(ApiError::Unauthorized);
            }
            let start = start_request(StartBody {
                application_id: body.application_id,
                login_id: body.login_id,
                login_id_types: None,
                login_strategy: Some(LoginStrategy::ClickableLink),
                state: body.state,
            })?;
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
            match body.code {
                // An empty code names no code: the same 200, and nothing sent, as for any other code
                // that names nothing (FusionAuth answers it so).
                Some(code) if code.is_empty() => SendOutcome::NothingToSend,
                code => {
                    let mut checks = Checks::new();
                    let code = checks.text("code", code, MAX_SECRET_LEN);
                    checks.finish()?;
                    passwordless::send_code(
                        app.store.as_ref(),
                        app.mailer.as_ref(),
                        app.clock.as_ref(),
                        &app.links,
                        &Secret::new(code.unwrap_or_default()),
                        source.as_deref(),
                    )
                    .await?
                }
            }
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
    let body: LoginBody = decode_body(&request.body)?;
    let mut checks = Checks::new();
    let code = checks.text("code", body.code, MAX_SECRET_LEN);
    let one_time_code = checks.optional_text("oneTimeCode", body.one_time_code, MAX_SECRET_LEN);
    let ip_address = checks.optional_text("ipAddress", body.ip_address, 64);
    checks.object_within("metaData", body.meta_data, 4096);
    checks.object_within("eventInfo", body.event_info, 4096);
    let trust_id =
        checks.optional_text("twoFactorTrustId", body.two_factor_trust_id, MAX_SECRET_LEN);
    checks.finish()?;
    let two_factor_trust = trust_id
        .or_else(|| super::pages::trust_cookie(app, request))
        .map(|id| Secret::new(id).hash());
    let login = LoginRequest {
        code_hash: Secret::new(code.unwrap_or_default()).hash(),
        presented: match one_time_code {
            Some(typed) => Presented::OneTimeCode(Secret::new(typed).hash()),
            None => Presented::Link,
        },
        application_id: body.application_id,
        // The body's address is recorded in events, as FusionAuth does; limits never read it.
        ip_address: ip_address.or_else(|| source_address(request)),
        source_address: if super::auth::holds_key(app, request, "/api/passwordless/login").await {
            None
        } else {
            source_address(request)
        },
        no_jwt: body.no_jwt.unwrap_or(false),
        two_factor_trust,
        authorization: None,
    };
    let outcome = passwordless::login(
        app.store.as_ref(),
        app.key_vault.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        login,
    )
    .await?;
    match outcome {
        LoginOutcome::LoggedIn(done) => super::login::login_response(app, *done, None).await,
        LoginOutcome::TwoFactor(pending) => Ok(super::login::pending_response(&pending)),
    }
}
