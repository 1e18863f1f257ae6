//! `/api/user/registration`: a registration made (alone or with its user), read, changed and
//! deleted.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{patch_object, patched, required_object};
use crate::app::App;
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, Registration, User, UserId};
use crate::flows::management::{self as flows, RegisterCommand};
use crate::flows::tenancy::TenantScope;
use crate::flows::users;
use crate::flows::verification::VerificationKind;
use crate::http::errors::ApiError;
use crate::http::json::decode_body;
use crate::http::wire::{IssuedTokens, RegistrationResponse};
use crate::http::{empty_response, json_response, HttpRequest, HttpResponse};

/// FusionAuth's `RegistrationRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct RegistrationBody {
    pub(super) registration: Option<Registration>,
    user: Option<User>,
    skip_verification: Option<bool>,
    skip_registration_verification: Option<bool>,
    send_set_password_email: Option<bool>,
    generate_authentication_token: Option<bool>,
    send_set_password_identity_type: Option<String>,
    disable_domain_block: Option<bool>,
    verification_ids: Option<Vec<String>>,
    event_info: Option<Map<String, Value>>,
}

pub async fn register(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    user_id: Option<UserId>,
) -> Result<HttpResponse, ApiError> {
    let body: RegistrationBody = decode_body(&request.body)?;
    if body.generate_authentication_token == Some(true) {
        // A standing token that logs the user in would be a password by another name.
        return Err(ApiError::field(FieldError::invalid(
            "generateAuthenticationToken",
            "[generateAuthenticationToken] is not supported: this server issues no standing authentication tokens.",
        )));
    }
    let creates_user = body.user.is_some();
    let command = RegisterCommand {
        registration: required_object("registration", body.registration)?,
        user: body.user,
        skip_verification: body.skip_verification.unwrap_or(false),
        skip_registration_verification: body.skip_registration_verification.unwrap_or(false),
    };
    let registered = flows::register(&app.verification_ports(), scope, user_id, command).await?;
    let tokens = match creates_user {
        true => Some(
            flows::registration_tokens(
                app.store.as_ref(),
                app.key_vault.as_ref(),
                app.entropy.as_ref(),
                app.clock.as_ref(),
                &registered,
            )
            .await?,
        ),
        false => None,
    };
    let mut response = RegistrationResponse::of(&registered.registration);
    response.user = Some(&registered.user);
    // The caller holds a key that may register users: it sees the one-time codes too.
    response.verifications.add(
        VerificationKind::Email,
        registered.email_verification.as_ref(),
        true,
    );
    response.verifications.add(
        VerificationKind::Registration,
        registered.registration_verification.as_ref(),
        true,
    );
    if let Some(tokens) = &tokens {
        response.tokens = IssuedTokens {
            token: Some(&tokens.access.token),
            token_expiration_instant: Some(tokens.access.expiration),
            refresh_token: tokens.refresh.as_ref().map(|r| r.token.expose()),
            refresh_token_id: tokens.refresh.as_ref().map(|r| r.id),
        };
    }
    Ok(json_response(StatusCode::OK, &response))
}

pub(crate) async fn retrieve_registration(
    app: &App,
    scope: &TenantScope,
    user_id: UserId,
    application_id: ApplicationId,
) -> Result<HttpResponse, ApiError> {
    let registration =
        users::registration(app.store.as_ref(), scope, user_id, application_id).await?;
    Ok(json_response(
        StatusCode::OK,
        &RegistrationResponse::of(&registration),
    ))
}

/// `PUT`/`PATCH /api/user/registration/{userId}` (the application named in the body, as
/// FusionAuth's clients send it) and `…/{userId}/{applicationId}`.
pub(crate) async fn update_registration(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    user_id: UserId,
    in_path: Option<ApplicationId>,
) -> Result<HttpResponse, ApiError> {
    let store = app.store.as_ref();
    let registration = if request.method == http::Method::PATCH {
        let patch = patch_object(&request.body, "registration")?;
        let named = patch
            .get("applicationId")
            .and_then(Value::as_str)
            .and_then(ApplicationId::parse);
        let application_id = in_path
            .or(named)
            .ok_or_else(|| ApiError::field(FieldError::missing("registration.applicationId")))?;
        let current = users::registration(store, scope, user_id, application_id).await?;
        patched(&current, patch, "registration")?
    } else {
        let body: RegistrationBody = decode_body(&request.body)?;
        required_object("registration", body.registration)?
    };
    let mut registration = registration;
    match (in_path, registration.application_id.is_nil()) {
        (Some(path), true) => registration.application_id = path,
        (Some(path), false) if path != registration.application_id => {
            return Err(ApiError::field(FieldError::invalid(
                "registration.applicationId",
                "The application differs from the one in the path.",
            )))
        }
        (None, true) => {
            return Err(ApiError::field(FieldError::missing(
                "registration.applicationId",
            )))
        }
        _ => {}
    }
    let registration =
        users::update_registration(store, app.clock.as_ref(), scope, user_id, registration).await?;
    Ok(json_response(
        StatusCode::OK,
        &RegistrationResponse::of(&registration),
    ))
}

pub(crate) async fn delete_registration(
    app: &App,
    scope: &TenantScope,
    user_id: UserId,
    application_id: ApplicationId,
) -> Result<HttpResponse, ApiError> {
    users::delete_registration(
        app.store.as_ref(),
        app.clock.as_ref(),
        scope,
        user_id,
        application_id,
    )
    .await?;
    Ok(empty_response(StatusCode::OK))
}
