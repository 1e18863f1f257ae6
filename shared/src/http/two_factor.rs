//! FusionAuth's two-factor API: `/api/two-factor/{secret,send,login,status}` and
//! `/api/user/two-factor/{userId}` (enable, disable) with its recovery codes.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::json::{decode_body, decode_optional_body, query_id, Checks};
use super::wire::{SecretResponse, TwoFactorResponse, TwoFactorStatusResponse, TwoFactorTrustView};
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::two_factor::{otpauth_uri, AuthenticatorSecret, TwoFactorMethodKind};
use crate::domain::user::{looks_like_email, MAX_LOGIN_ID_LEN};
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, Secret, UserId};
use crate::flows::tenancy::TenantScope;
use crate::flows::two_factor::{self as flows, EnableRequest, ManageCode, SecondFactorLogin};

/// A method id is four characters; anything much longer cannot be one.
const MAX_METHOD_ID_LEN: usize = 32;

/// `GET /api/two-factor/secret`: a fresh secret for an authenticator app, as FusionAuth's
/// `secret` (base64) and `secretBase32Encoded`, and (ours) the `otpauth://` URI an app reads.
pub async fn secret(
    app: &App,
    _request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let secret = AuthenticatorSecret::generate(app.entropy.as_ref())
        .map_err(crate::flows::FlowError::from)?;
    let issuer = flows::authenticator_issuer(app.store.as_ref(), scope).await?;
    Ok(json_response(
        StatusCode::OK,
        &SecretResponse {
            secret: secret.to_base64(),
            secret_base32_encoded: secret.to_base32(),
            otpauth_uri: otpauth_uri(&secret, &issuer, None),
        },
    ))
}

/// FusionAuth's `TwoFactorRequest` for enabling a method.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct EnableBody {
    code: Option<String>,
    method: Option<String>,
    secret: Option<String>,
    secret_base32_encoded: Option<String>,
    email: Option<String>,
    mobile_phone: Option<String>,
    application_id: Option<ApplicationId>,
    two_factor_id: Option<String>,
    method_id: Option<String>,
    event_info: Option<Map<String, Value>>,
}

fn method_of(checks: &mut Checks, method: Option<String>) -> Option<TwoFactorMethodKind> {
    let method = checks.text("method", method, 32)?;
    let kind = TwoFactorMethodKind::parse(&method);
    if kind.is_none() {
        checks.push(FieldError::invalid(
            "method",
            "The method must be authenticator or email.",
        ));
    }
    kind
}

/// `POST /api/user/two-factor/{userId}`: enables a method with its first code; the user's
/// first method answers ten recovery codes.
pub(crate) async fn enable(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    user_id: UserId,
) -> Result<HttpResponse, ApiError> {
    let body: EnableBody = decode_body(&request.body)?;
    let mut checks = Checks::new();
    let code = checks.text("code", body.code, MAX_SECRET_LEN);
    let method = method_of(&mut checks, body.method);
    let secret_text = checks.optional_text("secret", body.secret, 256);
    let base32_text = checks.optional_text("secretBase32Encoded", body.secret_base32_encoded, 256);
    let email = checks.optional_text("email", body.email, MAX_LOGIN_ID_LEN);
    let two_factor_id = checks.optional_text("twoFactorId", body.two_factor_id, MAX_SECRET_LEN);
    let mut secret = None;
    if method == Some(TwoFactorMethodKind::Authenticator) {
        secret = match (secret_text, base32_text) {
            (Some(text), _) => AuthenticatorSecret::from_base64(&text).or_else(|| {
                checks.push(FieldError::invalid(
                    "secret",
                    "The secret must be base64 of 16 to 64 bytes.",
                ));
                None
            }),
            (None, Some(text)) => AuthenticatorSecret::from_base32(&text).or_else(|| {
                checks.push(FieldError::invalid(
                    "secretBase32Encoded",
                    "The secret must be base32 of 16 to 64 bytes.",
                ));
                None
            }),
            (None, None) => {
                checks.push(FieldError::blank("secret"));
                None
            }
        };
    }
    if method == Some(TwoFactorMethodKind::Email) {
        match email.as_deref().map(str::trim) {
            None | Some("") => checks.push(FieldError::blank("email")),
            Some(address) if !looks_like_email(address) => checks.push(FieldError::invalid(
                "email",
                "The email address is not valid.",
            )),
            Some(_) => {}
        }
    }
    checks.finish()?;
    let (Some(code), Some(method)) = (code, method) else {
        return Err(ApiError::field(FieldError::blank("code")));
    };
    let enabled = flows::enable(
        &app.two_factor_ports(),
        scope,
        user_id,
        EnableRequest {
            method,
            code: Secret::new(code),
            secret,
            email,
            two_factor_id: two_factor_id.map(Secret::new),
        },
    )
    .await?;
    let body = TwoFactorResponse {
        recovery_codes: (!enabled.recovery_codes.is_empty())
            .then(|| enabled.recovery_codes.iter().map(Secret::expose).collect()),
        code: enabled.code.as_ref().map(Secret::expose),
        ..TwoFactorResponse::default()
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// The query form of a disable (FusionAuth's clients send it this way).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DisableQuery {
    method_id: Option<String>,
    code: Option<String>,
}

/// FusionAuth's request for disabling a method (a DELETE body, or the query).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct DisableBody {
    method_id: Option<String>,
    code: Option<String>,
    application_id: Option<ApplicationId>,
    event_info: Option<Map<String, Value>>,
}

/// `DELETE /api/user/two-factor/{userId}?methodId=&code=` (or the same in a JSON body).
pub async fn disable(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    user_id: UserId,
) -> Result<HttpResponse, ApiError> {
    let body: DisableBody = decode_optional_body(&request.body)?;
    let query: DisableQuery = request.query()?;
    let mut checks = Checks::new();
    let method_id = checks.text(
        "methodId",
        body.method_id.or(query.method_id),
        MAX_METHOD_ID_LEN,
    );
    let code = checks.text("code", body.code.or(query.code), MAX_SECRET_LEN);
    checks.finish()?;
    let (Some(method_id), Some(code)) = (method_id, code) else {
        return Err(ApiError::field(FieldError::blank("code")));
    };
    flows::disable(
        &app.two_factor_ports(),
        scope,
        user_id,
        &method_id,
        &Secret::new(code),
    )
    .await?;
    Ok(empty_response(StatusCode::OK))
}

/// FusionAuth's `TwoFactorSendRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct SendBody {
    user_id: Option<UserId>,
    method: Option<String>,
    method_id: Option<String>,
    email: Option<String>,
    mobile_phone: Option<String>,
    application_id: Option<ApplicationId>,
}

/// `POST /api/two-factor/send` (API key): a code to enable an email method (`method`,
/// `email`) or to disable one (`methodId`).
pub async fn send(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let body: SendBody = decode_body(&request.body)?;
    let mut checks = Checks::new();
    let user_id = checks.required("userId", body.user_id);
    let method_id = checks.optional_text("methodId", body.method_id, MAX_METHOD_ID_LEN);
    let email = checks.optional_text("email", body.email, MAX_LOGIN_ID_LEN);
    let purpose = match method_id.filter(|m| !m.trim().is_empty()) {
        Some(method_id) => Some(ManageCode::Disable { method_id }),
        None => match method_of(&mut checks, body.method) {
            Some(TwoFactorMethodKind::Email) => match email.as_deref().map(str::trim) {
                Some(address) if looks_like_email(address) => Some(ManageCode::Enable {
                    email: address.to_owned(),
                }),
                Some(address) if !address.is_empty() => {
                    checks.push(FieldError::invalid(
                        "email",
                        "The email address is not valid.",
                    ));
                    None
                }
                _ => {
                    checks.push(FieldError::blank("email"));
                    None
                }
            },
            Some(TwoFactorMethodKind::Authenticator) => {
                checks.push(FieldError::invalid(
                    "method",
                    "Codes are sent for the email method only.",
                ));
                None
            }
            None => None,
        },
    };
    checks.finish()?;
    let (Some(user_id), Some(purpose)) = (user_id, purpose) else {
        return Err(ApiError::field(FieldError::blank("method")));
    };
    flows::send_manage_code(&app.two_factor_ports(), scope, user_id, purpose).await?;
    Ok(empty_response(StatusCode::OK))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct SendForLoginBody {
    method_id: Option<String>,
    email: Option<String>,
    method: Option<String>,
    mobile_phone: Option<String>,
}

/// `POST /api/two-factor/send/{twoFactorId}` (no key): mails a code for a login's pending step
/// to one of the user's email methods.
pub(crate) async fn send_for_login(
    app: &App,
    request: &HttpRequest,
    two_factor_id: &str,
) -> Result<HttpResponse, ApiError> {
    let body: SendForLoginBody = decode_body(&request.body)?;
    let mut checks = Checks::new();
    let method_id = checks.text("methodId", body.method_id, MAX_METHOD_ID_LEN);
    checks.finish()?;
    let Some(method_id) = method_id else {
        return Err(ApiError::field(FieldError::blank("methodId")));
    };
    if two_factor_id.is_empty() || two_factor_id.len() > MAX_SECRET_LEN {
        return Err(ApiError::NotFound);
    }
    flows::send_login_code(
        &app.two_factor_ports(),
        &Secret::new(two_factor_id),
        &method_id,
    )
    .await?;
    Ok(empty_response(StatusCode::OK))
}

/// FusionAuth's `TwoFactorLoginRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct TwoFactorLoginBody {
    two_factor_id: Option<String>,
    code: Option<String>,
    trust_computer: Option<bool>,
    application_id: Option<ApplicationId>,
    ip_address: Option<String>,
    meta_data: Option<Map<String, Value>>,
    #[serde(rename = "noJWT")]
    no_jwt: Option<bool>,
    event_info: Option<Map<String, Value>>,
    new_device: Option<bool>,
}

/// `POST /api/two-factor/login` (no key): the second step; 200 as the passwordless login would
/// have answered, with `twoFactorTrustId` (and its cookie) when `trustComputer`; 421 for a
/// wrong code; 404 for an unknown, used or expired step.
pub async fn login(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let body: TwoFactorLoginBody = decode_body(&request.body)?;
    let mut checks = Checks::new();
    let code = checks.text("code", body.code, MAX_SECRET_LEN);
    let two_factor_id = checks.text("twoFactorId", body.two_factor_id, MAX_SECRET_LEN);
    let ip_address = checks.optional_text("ipAddress", body.ip_address, 64);
    checks.object_within("metaData", body.meta_data, 4096);
    checks.object_within("eventInfo", body.event_info, 4096);
    checks.finish()?;
    let (Some(code), Some(two_factor_id)) = (code, two_factor_id) else {
        return Err(ApiError::field(FieldError::blank("code")));
    };
    let done = flows::login(
        &app.two_factor_ports(),
        SecondFactorLogin {
            two_factor_id: Secret::new(two_factor_id),
            code: Secret::new(code),
            trust_computer: body.trust_computer.unwrap_or(false),
            application_id: body.application_id,
            ip_address: ip_address.or_else(|| request.source_ip.map(|ip| ip.to_string())),
            no_jwt: body.no_jwt.unwrap_or(false),
        },
    )
    .await?;
    let mut response =
        super::login::login_response(app, done.logged_in, done.trust.as_ref()).await?;
    if let (Some(trust), Some(until)) = (&done.trust, done.trust_expires_at) {
        let cookie = super::pages::trust_set_cookie(app, trust, until, app.clock.now());
        super::append_set_cookies(&mut response, [cookie]);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusQuery {
    user_id: Option<String>,
    application_id: Option<String>,
}

/// `GET /api/two-factor/status/{twoFactorTrustId}?userId=&applicationId=`: 200 with the trust
/// when a login would not be asked for a second factor, 242 when it would.
pub(crate) async fn status_of(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    trust_id: &str,
) -> Result<HttpResponse, ApiError> {
    let query: StatusQuery = request.query()?;
    let user_id = query_id("userId", query.user_id, UserId::parse)?
        .ok_or_else(|| ApiError::field(FieldError::missing("userId")))?;
    let application_id = query_id("applicationId", query.application_id, ApplicationId::parse)?;
    let trust_id = Some(trust_id)
        .filter(|t| !t.is_empty() && t.len() <= MAX_SECRET_LEN)
        .map(Secret::new);
    let found = flows::status(
        app.store.as_ref(),
        app.clock.as_ref(),
        scope,
        user_id,
        application_id,
        trust_id.as_ref(),
    )
    .await?;
    let now = app.clock.now();
    Ok(match found {
        None => empty_response(super::login::two_factor_required()),
        Some(None) => json_response(
            StatusCode::OK,
            &TwoFactorStatusResponse {
                trusts: Vec::new(),
                two_factor_trust_id: None,
            },
        ),
        Some(Some(trust)) => json_response(
            StatusCode::OK,
            &TwoFactorStatusResponse {
                trusts: vec![TwoFactorTrustView {
                    application_id: trust.application_id,
                    expiration: trust.expires_at,
                    expired: !trust.is_live(now),
                    start_instant: trust.start_instant,
                }],
                two_factor_trust_id: trust_id.as_ref().map(Secret::expose),
            },
        ),
    })
}

/// `POST /api/user/two-factor/recovery-code/{userId}`: ten new recovery codes replace the old.
pub(crate) async fn regenerate_recovery_codes(
    app: &App,
    scope: &TenantScope,
    user_id: UserId,
) -> Result<HttpResponse, ApiError> {
    let codes = flows::regenerate_recovery_codes(&app.two_factor_ports(), scope, user_id).await?;
    Ok(json_response(
        StatusCode::OK,
        &TwoFactorResponse {
            recovery_codes: Some(codes.iter().map(Secret::expose).collect()),
            ..TwoFactorResponse::default()
        },
    ))
}

/// `DELETE /api/user/two-factor/trust/{userId}` (ours): every browser the user trusted asks
/// for the second factor again (S38).
pub(crate) async fn end_trusts(
    app: &App,
    scope: &TenantScope,
    user_id: UserId,
) -> Result<HttpResponse, ApiError> {
    flows::end_trusts(&app.two_factor_ports(), scope, user_id).await?;
    Ok(empty_response(StatusCode::OK))
}

/// `GET /api/user/two-factor/recovery-code/{userId}`: the codes are stored hashed (S2), so
/// this answers how many are left (ours: `remaining`) and an empty `recoveryCodes`.
pub(crate) async fn remaining_recovery_codes(
    app: &App,
    scope: &TenantScope,
    user_id: UserId,
) -> Result<HttpResponse, ApiError> {
    let remaining = flows::remaining_recovery_codes(app.store.as_ref(), scope, user_id).await?;
    Ok(json_response(
        StatusCode::OK,
        &TwoFactorResponse {
            recovery_codes: Some(Vec::new()),
            remaining: Some(remaining),
            code: None,
        },
    ))
}
