//! `/api/tenant`: tenants made, read, changed (whole or merged) and deleted.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{patch_object, patched, refuse_copy, required_object};
use crate::app::App;
use crate::domain::{Tenant, TenantId};
use crate::flows::management::{self as flows};
use crate::flows::tenancy::TenantScope;
use crate::http::errors::ApiError;
use crate::http::json::decode_body;
use crate::http::wire::{TenantResponse, TenantsResponse};
use crate::http::{empty_response, json_response, HttpRequest, HttpResponse};

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

pub(crate) async fn create_tenant(
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

pub(crate) async fn retrieve_tenant(
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

pub(crate) async fn list_tenants(app: &App, scope: &TenantScope) -> Result<HttpResponse, ApiError> {
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

pub(crate) async fn patch_tenant(
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
