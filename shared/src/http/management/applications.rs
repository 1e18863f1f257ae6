//! `/api/application` and its roles.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    patch_object, patched, refuse_copy, required_object, DeleteQuery, ListQuery, UpdateQuery,
};
use crate::app::App;
use crate::domain::application::ApplicationRole;
use crate::domain::ids::RoleId;
use crate::domain::{Application, ApplicationId};
use crate::flows::management::{self as flows};
use crate::flows::tenancy::TenantScope;
use crate::http::errors::ApiError;
use crate::http::json::decode_body;
use crate::http::wire::{ApplicationResponse, ApplicationsResponse, RoleResponse};
use crate::http::{empty_response, json_response, HttpRequest, HttpResponse};

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

pub(crate) async fn retrieve_application(
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
pub(crate) async fn list_applications(
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
pub(crate) async fn write_role(
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

pub(crate) async fn delete_role(
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
