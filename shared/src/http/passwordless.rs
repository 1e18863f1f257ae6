//! `/api/passwordless/{start,send,login}`.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::json::{decode_body, Checks};
use super::wire::{IssuedTokens, LoginResponse, StartResponse, VerificationIds};
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::code::LoginStrategy;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::user::{LoginIdType, MAX_LOGIN_ID_LEN};
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, Instant, Secret};
use crate::flows::passwordless::{
    self, LoggedIn, LoginOutcome, LoginRequest, LoginVerification, Presented, SendOutcome,
    StartRequest,
};
use crate::flows::tenancy::TenantScope;
use crate::flows::verification::{self, VerificationKind};

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
        .or_else(|| super::two_factor::trust_cookie(app, request))
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
        LoginOutcome::LoggedIn(done) => login_response(app, *done, None).await,
        LoginOutcome::TwoFactor(pending) => Ok(super::two_factor::pending_response(&pending)),
    }
}

/// What a finished login answers, from the passwordless login or its second step: the user,
/// the tokens, the start's `state` and the browser's new trust (a second step's); 202, 213 or
/// 212 where a registration or a verification is missing (with a fresh verification id), and
/// FusionAuth's login cookies.
pub(crate) async fn login_response(
    app: &App,
    done: LoggedIn,
    two_factor_trust: Option<&Secret>,
) -> Result<HttpResponse, ApiError> {
    let pending = match done.verification {
        LoginVerification::RegistrationUnverified => Some(VerificationKind::Registration),
        LoginVerification::EmailUnverified => Some(VerificationKind::Email),
        LoginVerification::NotRegistered | LoginVerification::Verified => None,
    };
    let issued = match pending {
        Some(kind) => Some((
            kind,
            verification::for_unverified_login(
                &app.verification_ports(),
                &done.user,
                done.application_id,
                kind,
            )
            .await?,
        )),
        None => None,
    };
    let mut verifications = VerificationIds::default();
    if let Some((kind, issued)) = &issued {
        // The id only: the one-time code reaches the person by email, never the caller.
        verifications.add(*kind, issued.as_ref(), false);
    }
    let (token, token_expiration_instant) = match (&done.token, done.token_expiration_instant) {
        (Some(token), Some(expiration)) => (Some(token.as_str()), Some(expiration)),
        _ => (None, None),
    };
    let (refresh_token, refresh_token_id) = match (&done.refresh_token, done.refresh_token_id) {
        (Some(refresh), Some(id)) => (Some(refresh.expose()), Some(id)),
        _ => (None, None),
    };
    let body = LoginResponse {
        user: &done.user,
        tokens: IssuedTokens {
            token,
            token_expiration_instant,
            refresh_token,
            refresh_token_id,
        },
        state: done.state.as_ref(),
        verifications,
        two_factor_trust_id: two_factor_trust.map(Secret::expose),
    };
    // FusionAuth's order: not registered, then the registration, then the address unverified;
    // the tokens come with each of them.
    let status = match done.verification {
        LoginVerification::NotRegistered => StatusCode::ACCEPTED,
        LoginVerification::RegistrationUnverified => status(213),
        LoginVerification::EmailUnverified => status(212),
        LoginVerification::Verified => StatusCode::OK,
    };
    let mut response = json_response(status, &body);
    let secure = app.links.0.starts_with("https://");
    for cookie in login_cookies(&done, secure, app.clock.now()) {
        if let Ok(value) = http::HeaderValue::from_str(&cookie) {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// FusionAuth's login cookies, for browser callers: `access_token` and `refresh_token`,
/// HttpOnly and SameSite=Strict, Secure when the public URL is https, each living as long as
/// its token. `/api/jwt/refresh` reads the refresh token back from its cookie.
fn login_cookies(done: &LoggedIn, secure: bool, now: Instant) -> Vec<String> {
    let cookie = |name: &str, value: &str, until: Instant| {
        let max_age = (until.as_millis() - now.as_millis()).max(0) / 1000;
        let mut cookie =
            format!("{name}={value}; Max-Age={max_age}; Path=/; SameSite=Strict; HttpOnly");
        if secure {
            cookie.push_str("; Secure");
        }
        cookie
    };
    let mut cookies = Vec::new();
    if let (Some(token), Some(until)) = (&done.token, done.token_expiration_instant) {
        cookies.push(cookie("access_token", token, until));
    }
    if let (Some(token), Some(until)) = (&done.refresh_token, done.refresh_token_expiration_instant)
    {
        cookies.push(cookie("refresh_token", token.expose(), until));
    }
    cookies
}

/// One of FusionAuth's own success codes (212, 213), which `http` has no name for.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
}
