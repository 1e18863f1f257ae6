//! The part of FusionAuth's management API that kickstart files and the Python client need,
//! one file per aggregate: tenants, applications with their roles, registrations. Users are
//! `flows::users`, email templates `flows::templates`, API keys `flows::api_keys`; this file
//! holds the checks they share on what an object may name.

mod applications;
mod registrations;
mod tenants;

pub use applications::ApplicationUpdate;
pub use applications::{
    application, applications, create_application, delete_application, update_application,
};
pub(crate) use applications::{create_role, delete_role, update_role};
pub(crate) use registrations::registration_tokens;
pub use registrations::Registered;
pub use registrations::{register, RegisterCommand};
pub(crate) use tenants::{create_tenant, TenantMaking};
pub use tenants::{delete_tenant, tenant, tenants, update_tenant};

use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{KeyId, TemplateId, TenantId};
use crate::ports::{SigningKeyStore, TemplateStore};

use super::tenancy::TenantScope;
use super::FlowResult;

/// A signing key objects of `tenant` may name (S22): the tenant's own, or a global key that only
/// an unrestricted caller may assign. Anything else reads as a key that does not exist.
pub(crate) async fn require_usable_key<S: SigningKeyStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    tenant: TenantId,
    key_id: KeyId,
    field: &str,
) -> FlowResult<()> {
    let usable = store
        .signing_key(key_id)
        .await?
        .filter(|key| match key.tenant_id {
            Some(owner) => owner == tenant,
            None => scope.is_unrestricted(),
        });
    match usable {
        Some(key) if key.can_sign() => Ok(()),
        Some(_) => Err(ValidationErrors::field(FieldError::invalid(
            field,
            "The key is a public key only: it cannot sign.",
        ))
        .into()),
        None => Err(
            ValidationErrors::field(FieldError::invalid(field, "The key does not exist.")).into(),
        ),
    }
}

/// A template objects of `tenant` may name: the tenant's own or a global one (S29).
pub(crate) async fn require_usable_template<S: TemplateStore + ?Sized>(
    store: &S,
    tenant: TenantId,
    template: TemplateId,
    field: &str,
) -> FlowResult<()> {
    match store.template(template).await? {
        Some(found) if found.usable_by(tenant) => Ok(()),
        _ => Err(ValidationErrors::field(FieldError::invalid(
            field,
            "The email template does not exist.",
        ))
        .into()),
    }
}

/// The tenant an object names in its body (nil: none), which must agree with the header or key
/// (FusionAuth answers a conflicting header 400).
pub(crate) fn named_tenant(
    named: TenantId,
    field: &str,
    scope: &TenantScope,
) -> FlowResult<Option<TenantId>> {
    if named.is_nil() {
        return Ok(None);
    }
    if !scope.allows(named) {
        return Err(ValidationErrors::field(FieldError::invalid(
            field,
            "The tenant id does not match the X-FusionAuth-TenantId header.",
        ))
        .into());
    }
    Ok(Some(named))
}

pub use super::api_keys::create_api_key;
