//! `/api/user/verify-email` and `/api/user/verify-registration`: take a verification (no key),
//! or, with a key, mark an address verified by user id or issue a new verification.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::json::decode_body;
use super::json::query_id;
use super::wire::VerificationResponse;
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, Secret, UserId};
use crate::flows::tenancy::TenantScope;
use crate::flows::verification::{self as flows, VerificationKind};

/// FusionAuth's `VerifyEmailRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct VerifyEmailBody {
    verification_id: Option<String>,
    one_time_code: Option<String>,
    user_id: Option<UserId>,
    event_info: Option<Map<String, Value>>,
}

/// FusionAuth's `VerifyRegistrationRequest`: no `userId`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct VerifyRegistrationBody {
    verification_id: Option<String>,
    one_time_code: Option<String>,
    event_info: Option<Map<String, Value>>,
}

/// A presented secret as the flows take it: blank is absent; longer than any secret this
/// server makes is one that cannot match (S11).
fn presented(value: Option<String>) -> Option<Secret> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| Secret::new(if v.len() > MAX_SECRET_LEN { "" } else { &v }))
}

/// `POST`: `{verificationId, oneTimeCode?}` takes a verification; `{userId}` with an API key
/// verifies the address outright.
pub async fn verify(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    kind: VerificationKind,
) -> Result<HttpResponse, ApiError> {
    let (verification_id, one_time_code) = match kind {
        VerificationKind::Email => {
            let body: VerifyEmailBody = decode_body(&request.body)?;
            if let (Some(user_id), None) = (body.user_id, body.verification_id.as_ref()) {
                flows::verify_by_user_id(app.store.as_ref(), app.clock.as_ref(), scope, user_id)
                    .await?;
                return Ok(empty_response(StatusCode::OK));
            }
            (body.verification_id, body.one_time_code)
        }
        VerificationKind::Registration => {
            let body: VerifyRegistrationBody = decode_body(&request.body)?;
            (body.verification_id, body.one_time_code)
        }
    };
    let Some(id) = presented(verification_id) else {
        return Err(ApiError::field(FieldError::blank("verificationId")));
    };
    flows::verify(
        app.store.as_ref(),
        app.clock.as_ref(),
        scope,
        kind,
        &id,
        presented(one_time_code).as_ref(),
    )
    .await?;
    Ok(empty_response(StatusCode::OK))
}

/// The query of a verification's reissue.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReissueQuery {
    email: Option<String>,
    application_id: Option<String>,
    send_verify_email: Option<bool>,
    send_verify_registration_email: Option<bool>,
    send_verify_password_email: Option<bool>,
}

/// `PUT ?email=[&applicationId=][&sendVerifyEmail=false]` (for registrations
/// `sendVerifyRegistrationEmail`, or `sendVerifyPasswordEmail` as FusionAuth's clients spell
/// it): a new verification, mailed unless asked not to, its id (and one-time code) answered.
pub(crate) async fn reissue(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    kind: VerificationKind,
) -> Result<HttpResponse, ApiError> {
    let query: ReissueQuery = request.query()?;
    let application_id = query_id("applicationId", query.application_id, ApplicationId::parse)?;
    let flags = match kind {
        VerificationKind::Email => [query.send_verify_email, None],
        VerificationKind::Registration => [
            query.send_verify_registration_email,
            query.send_verify_password_email,
        ],
    };
    let send = flags.into_iter().flatten().all(|send| send);
    let email = query.email.unwrap_or_default();
    let issued = flows::reissue(
        &app.verification_ports(),
        scope,
        kind,
        &email,
        application_id,
        send,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &VerificationResponse {
            verification_id: issued.id.expose(),
            one_time_code: issued.one_time_code.as_ref().map(Secret::expose),
        },
    ))
}
