//! Which tenant a request acts in: the `X-FusionAuth-TenantId` header, or the tenant a key is
//! locked to.

use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Application, ApplicationId, Tenant, TenantId};
use crate::ports::{ApplicationStore, TenantStore};

use super::{FlowError, FlowResult};

/// What the request said about its tenant before any body was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantScope {
    /// The `X-FusionAuth-TenantId` header, or the API key's tenant lock.
    pub explicit: Option<TenantId>,
    /// An API key permitted for the endpoint made the request (or a kickstart file, which acts
    /// as a key with no limits). Public endpoints with a key-only form check it (S31).
    pub authenticated: bool,
}

impl TenantScope {
    /// Whether an object of `tenant` may be touched under this scope (S22).
    pub fn allows(&self, tenant: TenantId) -> bool {
        self.explicit.is_none_or(|t| t == tenant)
    }

    /// Whether an object owned by `owner` (`None`: global, every tenant's to use) may be seen
    /// under this scope: global objects and the scope's tenant's (S22, S29).
    pub fn sees(&self, owner: Option<TenantId>) -> bool {
        match (owner, self.explicit) {
            (_, None) | (None, _) => true,
            (Some(owner), Some(tenant)) => owner == tenant,
        }
    }

    /// Whether an object owned by `owner` may be changed under this scope: a tenant's by its
    /// callers, a global one only by an unrestricted caller.
    pub fn changes(&self, owner: Option<TenantId>) -> bool {
        match owner {
            Some(owner) => self.allows(owner),
            None => self.is_unrestricted(),
        }
    }

    /// A caller with a key and no tenant: the only one that may make or assign global things
    /// (signing keys and email templates that belong to no tenant).
    pub(crate) fn is_unrestricted(&self) -> bool {
        self.authenticated && self.explicit.is_none()
    }

    /// The scope of the operator's own tools (demo seed, benchmarks): a key with no limits.
    pub fn operator() -> Self {
        Self {
            explicit: None,
            authenticated: true,
        }
    }

    /// The header's (or the key's) tenant, else the tenant of the object the body names, else
    /// the only tenant, else `[missing]tenantId`.
    pub(crate) async fn resolve<S: TenantStore + ?Sized>(
        &self,
        store: &S,
        named: Option<TenantId>,
    ) -> FlowResult<TenantId> {
        if let Some(tenant) = self.explicit.or(named) {
            return Ok(tenant);
        }
        let tenants = store.tenants().await?;
        match tenants.as_slice() {
            [only] => Ok(only.id),
            _ => Err(FlowError::Invalid(ValidationErrors::field(
                FieldError::missing("tenantId"),
            ))),
        }
    }
}

/// Loads an application the caller may use, or the field error FusionAuth gives.
pub(crate) async fn application_in_scope<S: ApplicationStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: ApplicationId,
) -> FlowResult<Application> {
    match store.application(id).await? {
        Some(app) if scope.allows(app.tenant_id) => Ok(app),
        _ => Err(ValidationErrors::field(FieldError::invalid(
            "applicationId",
            "The application does not exist.",
        ))
        .into()),
    }
}

/// The tenant an object belongs to; a missing one is our fault, never the caller's.
pub(crate) async fn tenant_of<S: TenantStore + ?Sized>(
    store: &S,
    id: TenantId,
) -> FlowResult<Tenant> {
    store
        .tenant(id)
        .await?
        .ok_or_else(|| FlowError::Internal(format!("tenant {id} is missing")))
}
