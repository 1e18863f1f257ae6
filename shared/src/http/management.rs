//! The management routes kickstart and the client libraries need, and the JWKS.

use http::StatusCode;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::json::parse_object;
use super::{json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, TemplateId, TenantId, UserId};
use crate::flows::management::{self as flows, take_object};
use crate::flows::tenancy::TenantScope;

fn path_id<T>(text: &str, field: &str, parse: fn(&str) -> Option<T>) -> Result<T, ApiError> {
    parse(text).ok_or_else(|| {
        ApiError::field(FieldError::invalid(
            field,
            format!("[{field}] in the path must be a UUID."),
        ))
    })
}

pub async fn create_tenant(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let id = id
        .map(|t| path_id(t, "tenantId", TenantId::parse))
        .transpose()?;
    if scope.explicit.is_some() {
        // A key locked to one tenant (or a request scoped to one) cannot make others (S22).
        return Err(ApiError::Unauthorized);
    }
    let object = take_object(&mut parse_object(&request.body)?, "tenant")?;
    let making = app.tenant_making();
    let tenant = flows::create_tenant(app.store.as_ref(), &making, scope, id, object).await?;
    Ok(json_response(StatusCode::OK, &json!({"tenant": tenant})))
}

pub async fn patch_tenant(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(id, "tenantId", TenantId::parse)?;
    let patch = take_object(&mut parse_object(&request.body)?, "tenant")?;
    let tenant =
        flows::patch_tenant(app.store.as_ref(), app.clock.as_ref(), scope, id, patch).await?;
    Ok(json_response(StatusCode::OK, &json!({"tenant": tenant})))
}

pub async fn create_application(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let id = id
        .map(|t| path_id(t, "applicationId", ApplicationId::parse))
        .transpose()?;
    let object = take_object(&mut parse_object(&request.body)?, "application")?;
    let application = flows::create_application(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        id,
        object,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"application": application_view(&application)}),
    ))
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
    user_id: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let user_id = user_id
        .map(|t| path_id(t, "userId", UserId::parse))
        .transpose()?;
    let body = parse_object(&request.body)?;
    let registered = flows::register(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        user_id,
        body,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"registration": registered.registration, "user": registered.user}),
    ))
}

pub async fn create_email_template(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let id = id
        .map(|t| path_id(t, "emailTemplateId", TemplateId::parse))
        .transpose()?;
    let object = take_object(&mut parse_object(&request.body)?, "emailTemplate")?;
    let template = flows::create_email_template(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        id,
        object,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"emailTemplate": template}),
    ))
}

pub async fn retrieve_user(
    app: &App,
    scope: &TenantScope,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    // An id that is not a UUID names no user: 404, like any unknown id.
    let id = UserId::parse(id).ok_or(ApiError::NotFound)?;
    let user = flows::user_by_id(app.store.as_ref(), scope, id).await?;
    Ok(json_response(StatusCode::OK, &json!({"user": user})))
}

/// `GET /api/user?email=…` (also `?loginId=…` and `?username=…`).
pub async fn search_user(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let query = request.query.as_deref().unwrap_or_default();
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let find = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let store = app.store.as_ref();
    let user = if let Some(email) = find("email") {
        flows::user_by_email(store, scope, &email).await?
    } else if let Some(login_id) = find("loginId").or_else(|| find("username")) {
        let tenant = scope.resolve(store, None).await?;
        let by_email = store
            .user_by_email(tenant, &login_id)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let found = match by_email {
            Some(user) => Some(user),
            None => store
                .user_by_username(tenant, &login_id)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        };
        found.ok_or(ApiError::NotFound)?
    } else {
        return Err(ApiError::field(FieldError::missing("email")));
    };
    Ok(json_response(StatusCode::OK, &json!({"user": user})))
}

pub async fn jwks(app: &App, tenant: Option<&str>) -> Result<HttpResponse, ApiError> {
    let keys = match tenant {
        None => flows::public_keys(app.store.as_ref()).await?,
        Some(id) => {
            let id = TenantId::parse(id).ok_or(ApiError::NotFound)?;
            flows::tenant_public_keys(app.store.as_ref(), id).await?
        }
    };
    let mut response = json_response(StatusCode::OK, &json!({"keys": Value::Array(keys)}));
    // Verifiers cache the key set; rotation keeps old keys published (S24), so an hour is safe.
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(response)
}
