//! `/api/email/template`: email templates, and the preview of one.

use http::StatusCode;
use serde::Deserialize;
use serde_json::Map;

use super::{patch_object, patched, required_object};
use crate::app::App;
use crate::domain::{EmailTemplate, TemplateId};
use crate::flows::templates;
use crate::flows::tenancy::TenantScope;
use crate::http::errors::ApiError;
use crate::http::json::decode_body;
use crate::http::wire::{
    EmailTemplateResponse, EmailTemplatesResponse, PreviewEmail, PreviewFrom, PreviewResponse,
};
use crate::http::{empty_response, json_response, HttpRequest, HttpResponse};

/// `{"emailTemplate": {…}}`, FusionAuth's `EmailTemplateRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EmailTemplateBody {
    email_template: Option<EmailTemplate>,
}

pub(crate) async fn create_email_template(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<TemplateId>,
) -> Result<HttpResponse, ApiError> {
    let body: EmailTemplateBody = decode_body(&request.body)?;
    let template = required_object("emailTemplate", body.email_template)?;
    let template = templates::create_email_template(
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

pub(crate) async fn retrieve_email_template(
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

pub(crate) async fn list_email_templates(
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
pub(crate) async fn update_email_template(
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

pub(crate) async fn delete_email_template(
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
pub(crate) async fn preview_email_template(
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
