//! What every fresh store holds: the default tenant, its signing key and a built-in
//! passwordless email template, so that send works with no configuration.

use crate::domain::tenant::{TenantEmailConfiguration, DEFAULT_TENANT_ID};
use crate::domain::{EmailTemplate, TemplateId, Tenant};
use crate::ports::{StoreError, TemplateStore, TenantStore};

use super::management::{create_tenant, TenantMaking};
use super::{FlowError, FlowResult};
use crate::ports::SigningKeyStore;

pub(crate) const BUILT_IN_TEMPLATE_ID: TemplateId =
    TemplateId::from_uuid(uuid::uuid!("6e1b4bfa-5c1a-4c3f-9a2e-0d8f3b6c1e02"));

/// FusionAuth's default template appends every `state` entry but `tenantId` to the link, so a
/// start whose state holds an authorization request (`client_id`, `redirect_uri`, …) mails a
/// link that finishes that grant. In the HTML part the separator is written `&amp;`.
const STATE_IN_LINK: &str = "{% for key, value in (state or {})|items %}{% if key != 'tenantId' %}&{{ key|urlencode }}={{ value|urlencode }}{% endif %}{% endfor %}";

fn built_in_template(now: crate::domain::Instant) -> EmailTemplate {
    let html_state = STATE_IN_LINK.replace("%}&{{", "%}&amp;{{");
    EmailTemplate {
        id: BUILT_IN_TEMPLATE_ID,
        tenant_id: None,
        name: "Passwordless login".into(),
        default_subject: "Your login link".into(),
        default_text_template: format!(
            "Hi {{{{ user.firstName or user.username or user.email }}}},\n\n\
            Log in with this link, valid for {{{{ timeToLive }}}} seconds:\n\n{{{{ url }}}}{STATE_IN_LINK}\n\n\
            {{% if oneTimeCode %}}Or type this code in the browser where you asked: {{{{ oneTimeCode }}}}\n\n{{% endif %}}\
            If you did not ask to log in, ignore this email: nobody can log in without the link.\n"
        ),
        default_html_template: format!(
            "<p>Hi {{{{ user.firstName or user.username or user.email }}}},</p>\
            <p><a href=\"{{{{ url }}}}{html_state}\">Log in</a> (the link is valid for {{{{ timeToLive }}}} seconds).</p>\
            {{% if oneTimeCode %}}<p>Or type this code in the browser where you asked: <strong>{{{{ oneTimeCode }}}}</strong></p>{{% endif %}}\
            <p>If you did not ask to log in, ignore this email: nobody can log in without the link.</p>"
        ),
        localized_subjects: Default::default(),
        localized_html_templates: Default::default(),
        localized_text_templates: Default::default(),
        from_email: None,
        default_from_name: None,
        insert_instant: now,
        last_update_instant: now,
        kept: Default::default(),
    }
}

/// Creates the default tenant if it is missing. Safe to run from several processes at once:
/// a lost race reads as success.
pub(crate) async fn ensure_default_tenant<S>(
    store: &S,
    making: &TenantMaking<'_>,
) -> FlowResult<Tenant>
where
    S: TenantStore + TemplateStore + SigningKeyStore + ?Sized,
{
    if let Some(tenant) = store.tenant(DEFAULT_TENANT_ID).await? {
        return Ok(tenant);
    }
    let now = making.clock.now();
    if store.template(BUILT_IN_TEMPLATE_ID).await?.is_none() {
        match store.insert_template(&built_in_template(now)).await {
            Ok(()) | Err(StoreError::Duplicate(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let tenant = Tenant {
        name: "Default".into(),
        email_configuration: TenantEmailConfiguration {
            passwordless_email_template_id: Some(BUILT_IN_TEMPLATE_ID),
            default_from_email: Some("no-reply@localhost".into()),
            ..TenantEmailConfiguration::default()
        },
        ..Tenant::default()
    };
    match create_tenant(
        store,
        making,
        &super::tenancy::TenantScope::operator(),
        Some(DEFAULT_TENANT_ID),
        tenant,
    )
    .await
    {
        Ok(tenant) => Ok(tenant),
        Err(FlowError::Invalid(_)) => store
            .tenant(DEFAULT_TENANT_ID)
            .await?
            .ok_or_else(|| FlowError::Internal("default tenant".into())),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_template_is_valid() {
        assert!(built_in_template(crate::domain::Instant::from_secs(0))
            .validate()
            .is_ok());
    }

    #[test]
    fn the_built_in_template_appends_the_state_to_the_link_but_the_tenant_id() {
        let template = built_in_template(crate::domain::Instant::from_secs(0));
        let context = serde_json::json!({
            "user": {"email": "a@example.com"},
            "timeToLive": 180,
            "url": "https://login.example/oauth2/passwordless/CODE?tenantId=T",
            "state": {"client_id": "c1", "redirect_uri": "https://app.example/cb?x=1", "tenantId": "other"},
        });
        let (_, html, text) = crate::domain::email::render_email(
            &template,
            &[],
            crate::domain::Instant::default(),
            &context,
        )
        .unwrap();
        let link = "https://login.example/oauth2/passwordless/CODE?tenantId=T&client_id=c1&redirect_uri=https%3A//app.example/cb%3Fx%3D1";
        assert!(text.contains(link), "{text}");
        assert!(html.contains(&link.replace('&', "&amp;")), "{html}");
        assert!(!text.contains("other"));
        let without_state = serde_json::json!({"user": {"email": "a@example.com"}, "timeToLive": 180, "url": "https://l/x"});
        let (_, html, _) = crate::domain::email::render_email(
            &template,
            &[],
            crate::domain::Instant::default(),
            &without_state,
        )
        .unwrap();
        assert!(
            !html.contains("type this code"),
            "no short code, no sentence: {html}"
        );
        let with_code = serde_json::json!({"user": {"email": "a@example.com"}, "timeToLive": 180, "url": "https://l/x", "oneTimeCode": "123456"});
        let (_, html, text) = crate::domain::email::render_email(
            &template,
            &[],
            crate::domain::Instant::default(),
            &with_code,
        )
        .unwrap();
        assert!(
            html.contains("<strong>123456</strong>") && text.contains(": 123456"),
            "{text}"
        );
        let (_, _, text) = crate::domain::email::render_email(
            &template,
            &[],
            crate::domain::Instant::default(),
            &without_state,
        )
        .unwrap();
        assert!(text.contains("https://l/x\n"), "{text}");
    }
}
