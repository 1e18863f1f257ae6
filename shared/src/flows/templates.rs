//! Email templates through the management API: read, list, replace, delete and preview. A
//! tenant's templates are its own; global ones are every tenant's to use and only an
//! unrestricted caller's to change (S29).

use serde_json::json;

use crate::domain::email::render_email;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{EmailTemplate, Instant, TemplateId, User};
use crate::ports::{ApplicationStore, Clock, Entropy, StoreError, TemplateStore, TenantStore};

use super::management::named_tenant;
use super::tenancy::TenantScope;
use super::{duplicate, random_id_bytes, FlowError, FlowResult};

pub async fn template<S: TemplateStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: TemplateId,
) -> FlowResult<EmailTemplate> {
    match store.template(id).await? {
        Some(t) if scope.sees(t.tenant_id) => Ok(t),
        _ => Err(FlowError::NotFound),
    }
}

pub async fn templates<S: TemplateStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
) -> FlowResult<Vec<EmailTemplate>> {
    let mut templates = store.templates().await?;
    templates.retain(|t| scope.sees(t.tenant_id));
    Ok(templates)
}

/// The template `id` if the caller may change it; a global one read by a tenant's caller is
/// refused as unauthorized, not hidden.
async fn own_template<S: TemplateStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: TemplateId,
) -> FlowResult<EmailTemplate> {
    let current = template(store, scope, id).await?;
    if !scope.changes(current.tenant_id) {
        return Err(FlowError::Unauthorized);
    }
    Ok(current)
}

/// Replaces a template (a PUT, or a PATCH the edge merged), compiled and checked again (S29).
/// Its id, owner and creation instant stay.
pub async fn update_template<S: TemplateStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    id: TemplateId,
    mut template: EmailTemplate,
) -> FlowResult<EmailTemplate> {
    let current = own_template(store, scope, id).await?;
    if template.tenant_id.is_some() && template.tenant_id != current.tenant_id {
        return Err(ValidationErrors::field(FieldError::invalid(
            "emailTemplate.tenantId",
            "A template cannot move to another tenant.",
        ))
        .into());
    }
    template.id = current.id;
    template.tenant_id = current.tenant_id;
    template.insert_instant = current.insert_instant;
    template.last_update_instant = clock.now();
    template.validate()?;
    match store.update_template(&template).await {
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        other => Ok(other.map(|()| template)?),
    }
}

/// Deletes a template no tenant or application sends with: one in use would leave their
/// logins without an email.
pub async fn delete_template<S>(store: &S, scope: &TenantScope, id: TemplateId) -> FlowResult<()>
where
    S: TemplateStore + TenantStore + ApplicationStore + ?Sized,
{
    own_template(store, scope, id).await?;
    let used_by_tenant = store
        .tenants()
        .await?
        .iter()
        .any(|t| t.email_template_references().iter().any(|(_, t)| *t == id));
    let used_by_application = store
        .applications()
        .await?
        .iter()
        .any(|a| a.email_template_references().iter().any(|(_, t)| *t == id));
    if used_by_tenant || used_by_application {
        return Err(ValidationErrors::field(FieldError::new(
            "inUse",
            "emailTemplateId",
            "A tenant or an application sends its passwordless or verification email with this template.",
        ))
        .into());
    }
    match store.delete_template(id).await {
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        other => Ok(other?),
    }
}

/// What a preview shows.
pub struct Preview {
    pub subject: String,
    pub html: String,
    pub text: String,
    pub from_email: Option<String>,
    pub from_name: Option<String>,
}

/// Renders a template against a sample user and code, in `locale` when it has a version for
/// it. Errors in the sources are the same field errors a save gives.
pub fn preview(
    template: &EmailTemplate,
    locale: Option<&str>,
    now: Instant,
) -> FlowResult<Preview> {
    let mut errors = ValidationErrors::new();
    for (field, source) in template.sources() {
        crate::domain::template::check_email_template_source(
            &mut errors,
            &format!("emailTemplate.{field}"),
            source,
        );
    }
    errors.into_result()?;
    let sample: User = serde_json::from_value(json!({
        "email": "jared@example.com",
        "firstName": "Jared",
        "lastName": "Dunn",
        "fullName": "Jared Dunn",
        "preferredLanguages": locale.map(|l| vec![l.to_owned()]).unwrap_or_default(),
    }))
    .map_err(|e| FlowError::Internal(e.to_string()))?;
    let code = "SAMPLE-CODE-7gYk1ZQxN0WcK5d3";
    let context = json!({
        "code": code,
        "oneTimeCode": "123456",
        "user": sample,
        "application": {"name": "Sample application"},
        "tenant": {"name": "Sample tenant"},
        "state": {"redirect_uri": "https://app.example/callback"},
        "timeToLive": 180,
        "url": format!("https://login.example/oauth2/passwordless/{code}"),
    });
    let (subject, html, text) = render_email(template, &sample.preferred_languages, now, &context)
        .map_err(|e| {
            ValidationErrors::field(FieldError::invalid("emailTemplate", e.to_string()))
        })?;
    Ok(Preview {
        subject,
        html,
        text,
        from_email: template.from_email.clone(),
        from_name: template.default_from_name.clone(),
    })
}

/// Creates an email template. A caller scoped to a tenant makes one of that tenant's templates;
/// an unrestricted caller makes a global one, or one of the tenant its body names (S29).
pub(crate) async fn create_email_template<S>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    scope: &TenantScope,
    id: Option<TemplateId>,
    mut template: EmailTemplate,
) -> FlowResult<EmailTemplate>
where
    S: TemplateStore + TenantStore + ?Sized,
{
    let id = match id {
        Some(id) => id,
        None => TemplateId::from_random_bytes(random_id_bytes(entropy)?),
    };
    let named = match template.tenant_id {
        Some(named) => named_tenant(named, "emailTemplate.tenantId", scope)?,
        None => None,
    };
    let owner = named.or(scope.explicit);
    if let Some(owner) = owner {
        if store.tenant(owner).await?.is_none() {
            return Err(ValidationErrors::field(FieldError::invalid(
                "emailTemplate.tenantId",
                "The tenant does not exist.",
            ))
            .into());
        }
    }
    let now = clock.now();
    template.id = id;
    template.tenant_id = owner;
    template.insert_instant = now;
    template.last_update_instant = now;
    template.validate()?;
    if store.template(id).await?.is_some() {
        return Err(duplicate(
            "emailTemplateId",
            "An email template with this id",
        ));
    }
    store.insert_template(&template).await?;
    Ok(template)
}
