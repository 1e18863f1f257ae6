//! The management routes kickstart and the client libraries need, and the JWKS.

use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::errors::ApiError;
use super::json::{decode_body, decode_value};
use super::wire::{
    ApplicationResponse, ApplicationsResponse, EmailTemplateResponse, EmailTemplatesResponse,
    IssuedTokens, JwksResponse, PreviewEmail, PreviewFrom, PreviewResponse, RegistrationResponse,
    RoleResponse, TenantResponse, TenantsResponse,
};
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::application::ApplicationRole;
use crate::domain::ids::RoleId;
use crate::domain::validation::FieldError;
use crate::domain::{
    Application, ApplicationId, EmailTemplate, Registration, TemplateId, Tenant, TenantId, User,
    UserId,
};
use crate::flows::management::{self as flows, RegisterCommand};
use crate::flows::templates;
use crate::flows::tenancy::TenantScope;
use crate::flows::verification::VerificationKind;

// The request bodies below carry every property of FusionAuth's request objects, so that a
// client that sends one is not refused; those this server does not act on are read by nobody.

/// `{"tenant": {…}}`, FusionAuth's `TenantRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct TenantBody {
    tenant: Option<Tenant>,
    source_tenant_id: Option<TenantId>,
    webhook_ids: Option<Vec<uuid::Uuid>>,
    event_info: Option<Map<String, Value>>,
}

/// `{"application": {…}}`, FusionAuth's `ApplicationRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct ApplicationBody {
    application: Option<Application>,
    role: Option<Value>,
    source_application_id: Option<ApplicationId>,
    event_info: Option<Map<String, Value>>,
}

/// FusionAuth's `RegistrationRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct RegistrationBody {
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

/// `{"emailTemplate": {…}}`, FusionAuth's `EmailTemplateRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EmailTemplateBody {
    email_template: Option<EmailTemplate>,
}

/// The object a request body carries under `name`: `[missing]name` without it.
pub(super) fn required_object<T>(name: &str, object: Option<T>) -> Result<T, ApiError> {
    object.ok_or_else(|| ApiError::field(FieldError::missing(name)))
}

/// A source object FusionAuth copies from, which this product does not do: refused by name
/// rather than ignored, since the result would not be what the caller asked for.
pub(super) fn refuse_copy<T>(field: &str, source: Option<T>) -> Result<(), ApiError> {
    match source {
        Some(_) => Err(ApiError::field(FieldError::invalid(
            field,
            format!("[{field}] is not supported: copying objects is not a feature of this server."),
        ))),
        None => Ok(()),
    }
}

pub async fn create_tenant(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<TenantId>,
) -> Result<HttpResponse, ApiError> {
    if scope.explicit.is_some() {
        // A key locked to one tenant (or a request scoped to one) cannot make others (S22).
        return Err(ApiError::Unauthorized);
    }
    let body: TenantBody = decode_body(&request.body)?;
    refuse_copy("sourceTenantId", body.source_tenant_id)?;
    let tenant = required_object("tenant", body.tenant)?;
    let making = app.tenant_making();
    let tenant = flows::create_tenant(app.store.as_ref(), &making, scope, id, tenant).await?;
    Ok(json_response(
        StatusCode::OK,
        &TenantResponse { tenant: &tenant },
    ))
}

pub async fn retrieve_tenant(
    app: &App,
    scope: &TenantScope,
    id: TenantId,
) -> Result<HttpResponse, ApiError> {
    // An id that is not a UUID names no tenant: 404, like any unknown id.
    let tenant = flows::tenant(app.store.as_ref(), scope, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &TenantResponse { tenant: &tenant },
    ))
}

pub async fn list_tenants(app: &App, scope: &TenantScope) -> Result<HttpResponse, ApiError> {
    let tenants = flows::tenants(app.store.as_ref(), scope).await?;
    Ok(json_response(
        StatusCode::OK,
        &TenantsResponse { tenants: &tenants },
    ))
}

/// `PUT`: the body is the whole tenant; what it leaves out takes its default.
pub async fn update_tenant(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: TenantId,
) -> Result<HttpResponse, ApiError> {
    let body: TenantBody = decode_body(&request.body)?;
    refuse_copy("sourceTenantId", body.source_tenant_id)?;
    let tenant = required_object("tenant", body.tenant)?;
    let tenant =
        flows::update_tenant(app.store.as_ref(), app.clock.as_ref(), scope, id, tenant).await?;
    Ok(json_response(
        StatusCode::OK,
        &TenantResponse { tenant: &tenant },
    ))
}

pub async fn delete_tenant(
    app: &App,
    scope: &TenantScope,
    id: TenantId,
) -> Result<HttpResponse, ApiError> {
    flows::delete_tenant(app.store.as_ref(), scope, id).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn patch_tenant(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: TenantId,
) -> Result<HttpResponse, ApiError> {
    let patch = patch_object(&request.body, "tenant")?;
    let current = flows::tenant(app.store.as_ref(), scope, id).await?;
    let tenant = patched(&current, patch, "tenant")?;
    let tenant =
        flows::update_tenant(app.store.as_ref(), app.clock.as_ref(), scope, id, tenant).await?;
    Ok(json_response(
        StatusCode::OK,
        &TenantResponse { tenant: &tenant },
    ))
}

/// The object a PATCH body carries under `name`, checked against the object's type before it is
/// merged: a wrong type or an unknown property is `[invalidJSON]` as on a create.
pub(super) fn patch_object(body: &[u8], name: &str) -> Result<Map<String, Value>, ApiError> {
    let mut body: Map<String, Value> = decode_body(body)?;
    match body.remove(name) {
        Some(Value::Object(object)) => Ok(object),
        Some(Value::Null) | None => Err(ApiError::field(FieldError::missing(name))),
        Some(_) => Err(super::json::invalid_json(Some(name), "not an object")),
    }
}

/// `current` with `patch` merged in (RFC 7396: objects merge, other values replace, null
/// removes), decoded again so every property of the result is checked.
pub(super) fn patched<T: Serialize + DeserializeOwned>(
    current: &T,
    patch: Map<String, Value>,
    name: &str,
) -> Result<T, ApiError> {
    let mut merged = serde_json::to_value(current)
        .map_err(|e| ApiError::Internal(super::errors::Internal::caused_by(e)))?;
    merge(&mut merged, Value::Object(patch));
    decode_value(merged, Some(name)).map_err(ApiError::BadRequest)
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

pub async fn create_application(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<ApplicationId>,
) -> Result<HttpResponse, ApiError> {
    let body: ApplicationBody = decode_body(&request.body)?;
    refuse_copy("sourceApplicationId", body.source_application_id)?;
    let application = required_object("application", body.application)?;
    let application = flows::create_application(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        id,
        application,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &ApplicationResponse {
            application: &application_view(&application),
        },
    ))
}

pub async fn retrieve_application(
    app: &App,
    scope: &TenantScope,
    id: ApplicationId,
) -> Result<HttpResponse, ApiError> {
    let application = flows::application(app.store.as_ref(), scope, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &ApplicationResponse {
            application: &application_view(&application),
        },
    ))
}

/// `GET /api/application`, or with `inactive=true` the deactivated ones.
pub async fn list_applications(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let ListQuery { inactive } = request.query()?;
    let applications = flows::applications(app.store.as_ref(), scope, inactive).await?;
    let views: Vec<Value> = applications.iter().map(application_view).collect();
    Ok(json_response(
        StatusCode::OK,
        &ApplicationsResponse {
            applications: &views,
        },
    ))
}

/// `PUT` (the whole application; `?reactivate=true` with or without a body reactivates it) and
/// `PATCH` (merged into the stored one).
pub async fn update_application(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: ApplicationId,
    merge_patch: bool,
) -> Result<HttpResponse, ApiError> {
    let update = flows::ApplicationUpdate {
        reactivate: request.query::<UpdateQuery>()?.reactivate,
    };
    let store = app.store.as_ref();
    let application = if merge_patch {
        let patch = patch_object(&request.body, "application")?;
        let current = flows::application(store, scope, id).await?;
        patched(&current, patch, "application")?
    } else if update.reactivate && request.body.iter().all(u8::is_ascii_whitespace) {
        flows::application(store, scope, id).await?
    } else {
        let body: ApplicationBody = decode_body(&request.body)?;
        refuse_copy("sourceApplicationId", body.source_application_id)?;
        required_object("application", body.application)?
    };
    let application =
        flows::update_application(store, app.clock.as_ref(), scope, id, application, update)
            .await?;
    Ok(json_response(
        StatusCode::OK,
        &ApplicationResponse {
            application: &application_view(&application),
        },
    ))
}

/// `DELETE`: deactivates, or with `hardDelete=true` deletes with every registration for it.
pub async fn delete_application(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: ApplicationId,
) -> Result<HttpResponse, ApiError> {
    let DeleteQuery { hard_delete: hard } = request.query()?;
    flows::delete_application(app.store.as_ref(), app.clock.as_ref(), scope, id, hard).await?;
    Ok(empty_response(StatusCode::OK))
}

/// `{"role": {…}}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct RoleBody {
    role: Option<ApplicationRole>,
    application: Option<Value>,
    source_application_id: Option<ApplicationId>,
    event_info: Option<Map<String, Value>>,
}

/// `POST` (with or without the role id), `PUT` and `PATCH` of one role.
pub async fn write_role(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    application_id: ApplicationId,
    role_id: Option<RoleId>,
) -> Result<HttpResponse, ApiError> {
    let store = app.store.as_ref();
    let clock = app.clock.as_ref();
    let role = match (request.method.as_str(), role_id) {
        ("PATCH", Some(role_id)) => {
            let patch = patch_object(&request.body, "role")?;
            let application = flows::application(store, scope, application_id).await?;
            let current = application
                .roles
                .iter()
                .find(|r| r.id == role_id)
                .ok_or(ApiError::NotFound)?;
            let role = patched(current, patch, "role")?;
            flows::update_role(store, clock, scope, application_id, role_id, role).await?
        }
        ("PUT", Some(role_id)) => {
            let body: RoleBody = decode_body(&request.body)?;
            let role = required_object("role", body.role)?;
            flows::update_role(store, clock, scope, application_id, role_id, role).await?
        }
        _ => {
            let body: RoleBody = decode_body(&request.body)?;
            let role = required_object("role", body.role)?;
            let entropy = app.entropy.as_ref();
            flows::create_role(store, clock, entropy, scope, application_id, role_id, role).await?
        }
    };
    Ok(json_response(StatusCode::OK, &RoleResponse { role: &role }))
}

pub async fn delete_role(
    app: &App,
    scope: &TenantScope,
    application_id: ApplicationId,
    role_id: RoleId,
) -> Result<HttpResponse, ApiError> {
    flows::delete_role(
        app.store.as_ref(),
        app.clock.as_ref(),
        scope,
        application_id,
        role_id,
    )
    .await?;
    Ok(empty_response(StatusCode::OK))
}

/// `?inactive=true` on a list: the deactivated objects instead of the active ones.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    #[serde(default)]
    pub inactive: bool,
}

/// `?reactivate=true` on an update.
#[derive(Debug, Default, Deserialize)]
pub(super) struct UpdateQuery {
    #[serde(default)]
    pub reactivate: bool,
}

/// `?hardDelete=true` on a delete: gone, not deactivated.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeleteQuery {
    #[serde(default)]
    pub hard_delete: bool,
}

/// An application as responses show it: never the client secret's hash; the secret itself
/// only in the response that created it (it is not stored).
fn application_view(application: &crate::domain::Application) -> Value {
    let mut view = json!(application);
    if let Some(oauth) = view
        .get_mut("oauthConfiguration")
        .and_then(Value::as_object_mut)
    {
        oauth.remove("clientSecretHash");
        if let Some(secret) = &application.oauth_configuration.client_secret {
            oauth.insert("clientSecret".into(), json!(secret.expose()));
        }
    }
    view
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

pub async fn create_email_template(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<TemplateId>,
) -> Result<HttpResponse, ApiError> {
    let body: EmailTemplateBody = decode_body(&request.body)?;
    let template = required_object("emailTemplate", body.email_template)?;
    let template = flows::create_email_template(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        id,
        template,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &EmailTemplateResponse {
            email_template: &template,
        },
    ))
}

pub async fn retrieve_email_template(
    app: &App,
    scope: &TenantScope,
    id: TemplateId,
) -> Result<HttpResponse, ApiError> {
    let template = templates::template(app.store.as_ref(), scope, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &EmailTemplateResponse {
            email_template: &template,
        },
    ))
}

pub async fn list_email_templates(
    app: &App,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let found = templates::templates(app.store.as_ref(), scope).await?;
    Ok(json_response(
        StatusCode::OK,
        &EmailTemplatesResponse {
            email_templates: &found,
        },
    ))
}

/// `PUT` (the whole template) and `PATCH` (merged into the stored one).
pub async fn update_email_template(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: TemplateId,
    merge_patch: bool,
) -> Result<HttpResponse, ApiError> {
    let store = app.store.as_ref();
    let template = if merge_patch {
        let patch = patch_object(&request.body, "emailTemplate")?;
        let current = templates::template(store, scope, id).await?;
        patched(&current, patch, "emailTemplate")?
    } else {
        let body: EmailTemplateBody = decode_body(&request.body)?;
        required_object("emailTemplate", body.email_template)?
    };
    let template =
        templates::update_template(store, app.clock.as_ref(), scope, id, template).await?;
    Ok(json_response(
        StatusCode::OK,
        &EmailTemplateResponse {
            email_template: &template,
        },
    ))
}

pub async fn delete_email_template(
    app: &App,
    scope: &TenantScope,
    id: TemplateId,
) -> Result<HttpResponse, ApiError> {
    templates::delete_template(app.store.as_ref(), scope, id).await?;
    Ok(empty_response(StatusCode::OK))
}

/// FusionAuth's `PreviewRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PreviewBody {
    email_template: Option<EmailTemplate>,
    locale: Option<String>,
}

/// `POST /api/email/template/preview`: the template rendered for a sample user, as FusionAuth's
/// `PreviewResponse` (`email` with `from`, `subject`, `html`, `text`; `errors`).
pub async fn preview_email_template(
    app: &App,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body: PreviewBody = decode_body(&request.body)?;
    let template = required_object("emailTemplate", body.email_template)?;
    let preview = templates::preview(&template, body.locale.as_deref(), app.clock.now())?;
    let from = preview.from_email.map(|address| PreviewFrom {
        address,
        display: preview.from_name,
    });
    Ok(json_response(
        StatusCode::OK,
        &PreviewResponse {
            email: PreviewEmail {
                subject: preview.subject,
                html: preview.html,
                text: preview.text,
                from,
            },
            errors: Map::new(),
        },
    ))
}

pub async fn jwks(app: &App, tenant: Option<TenantId>) -> Result<HttpResponse, ApiError> {
    let keys = match tenant {
        None => flows::public_keys(app.store.as_ref()).await?,
        Some(id) => flows::tenant_public_keys(app.store.as_ref(), id).await?,
    };
    let mut response = json_response(StatusCode::OK, &JwksResponse { keys: &keys });
    // Verifiers cache the key set; rotation keeps old keys published (S24), so an hour is safe.
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
