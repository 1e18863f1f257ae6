//! Mailing one of a tenant's email templates to a user: the one way every email of the
//! product (passwordless links, verifications) is rendered and handed to the mailer.

use serde_json::Value;

use crate::domain::email::{render_email, OutgoingEmail};
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Instant, TemplateId, Tenant, User};
use crate::ports::{Mailer, SentEmail, TemplateStore};

use super::FlowResult;

/// One email to send: the template, whom to, and what the template sees.
pub(crate) struct TemplatedEmail<'a> {
    pub tenant: &'a Tenant,
    pub template_id: TemplateId,
    pub to_email: String,
    pub user: &'a User,
    pub context: &'a Value,
    /// The request field an unusable template is reported on.
    pub field: &'a str,
}

/// Renders the template in the user's preferred language and sends it.
pub(crate) async fn send_template<S: TemplateStore + ?Sized>(
    store: &S,
    mailer: &dyn Mailer,
    email: &TemplatedEmail<'_>,
    now: Instant,
) -> FlowResult<SentEmail> {
    let TemplatedEmail {
        tenant,
        template_id,
        user,
        field,
        ..
    } = *email;
    // Management refuses another tenant's template; a store written before that rule still
    // never renders one tenant's template for another's user (S29).
    let template = store
        .template(template_id)
        .await?
        .filter(|t| t.usable_by(tenant.id))
        .ok_or_else(|| {
            ValidationErrors::field(FieldError::invalid(
                field,
                "The email template does not exist.",
            ))
        })?;
    let (subject, html, text) =
        render_email(&template, &user.preferred_languages, now, email.context)?;
    let from_email = template
        .from_email
        .clone()
        .or_else(|| tenant.email_configuration.default_from_email.clone())
        .unwrap_or_else(|| "no-reply@localhost".to_owned());
    let from_name = template
        .default_from_name
        .clone()
        .or_else(|| tenant.email_configuration.default_from_name.clone());
    let to_name = user.full_name.clone().or_else(|| {
        let parts: Vec<&str> = [user.first_name.as_deref(), user.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    Ok(mailer
        .send(&OutgoingEmail {
            from_email,
            from_name,
            to_email: email.to_email.clone(),
            to_name,
            subject,
            html,
            text,
        })
        .await?)
}
