//! Tenants: made with their signing keys and templates checked, changed, deleted with
//! everything they own.

use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{KeyId, Tenant, TenantId};
use crate::ports::{
    Clock, Entropy, KeyMaker, KeyVault, SigningKeyStore, StoreError, TemplateStore, TenantStore,
};

use crate::flows::tenancy::TenantScope;
use crate::flows::{duplicate, random_id_bytes, FlowError, FlowResult};

use super::{require_usable_key, require_usable_template};

/// Everything tenant creation needs besides the store.
pub(crate) struct TenantMaking<'a> {
    pub key_maker: &'a dyn KeyMaker,
    pub vault: &'a dyn KeyVault,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
    /// The public URL: the default tenant's issuer, and the base of every other tenant's.
    pub default_issuer: &'a str,
}

/// Creates a tenant and its signing key (RS256 unless `jwtConfiguration.signingAlgorithm` says
/// otherwise), unless the tenant names an existing key. The request's id and instants are
/// replaced by the server's.
pub(crate) async fn create_tenant<S>(
    store: &S,
    making: &TenantMaking<'_>,
    scope: &TenantScope,
    id: Option<TenantId>,
    mut tenant: Tenant,
) -> FlowResult<Tenant>
where
    S: TenantStore + SigningKeyStore + TemplateStore + ?Sized,
{
    let now = making.clock.now();
    let id = match id {
        Some(id) => id,
        None => TenantId::from_random_bytes(random_id_bytes(making.entropy)?),
    };
    tenant.id = id;
    tenant.insert_instant = now;
    tenant.last_update_instant = now;
    // The default tenant's tokens carry the public URL; every other tenant gets an issuer of its
    // own under it (ours), so that no verifier trusting one tenant's issuer accepts another's
    // tokens (S22), and so that issuer + `/.well-known/…` is the tenant's own discovery path.
    if tenant.issuer.is_empty() {
        tenant.issuer = if id == crate::domain::tenant::DEFAULT_TENANT_ID {
            making.default_issuer.to_owned()
        } else {
            format!("{}/{id}", making.default_issuer.trim_end_matches('/'))
        };
    }
    tenant.validate()?;
    if store.tenant(id).await?.is_some() {
        return Err(duplicate("tenantId", "A tenant with this id"));
    }
    for (field, template) in tenant.email_template_references() {
        require_usable_template(store, id, template, field).await?;
    }
    if let Some(key_id) = tenant.jwt_configuration.id_token_key_id {
        require_usable_key(
            store,
            scope,
            id,
            key_id,
            "tenant.jwtConfiguration.idTokenKeyId",
        )
        .await?;
    }
    match tenant.jwt_configuration.access_token_key_id {
        Some(key_id) => {
            require_usable_key(
                store,
                scope,
                id,
                key_id,
                "tenant.jwtConfiguration.accessTokenKeyId",
            )
            .await?;
        }
        None => {
            let key_id = KeyId::from_random_bytes(random_id_bytes(making.entropy)?);
            let made = making.key_maker.generate(
                key_id,
                tenant.jwt_configuration.signing_algorithm,
                None,
            )?;
            let key = crate::flows::keys::seal(making.vault, &made, Some(id), now).await?;
            store.insert_signing_key(&key).await?;
            tenant.jwt_configuration.access_token_key_id = Some(key_id);
        }
    }
    match store.insert_tenant(&tenant).await {
        Err(StoreError::Duplicate(_)) => Err(duplicate("tenantId", "A tenant with this id")),
        other => Ok(other.map(|()| tenant)?),
    }
}

/// The tenant `id`, if the caller may see it.
pub async fn tenant<S: TenantStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: TenantId,
) -> FlowResult<Tenant> {
    match store.tenant(id).await? {
        Some(t) if scope.allows(t.id) => Ok(t),
        _ => Err(FlowError::NotFound),
    }
}

/// Every tenant the caller may see: all of them, or the one its key or header names.
pub async fn tenants<S: TenantStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
) -> FlowResult<Vec<Tenant>> {
    let mut tenants = store.tenants().await?;
    tenants.retain(|t| scope.allows(t.id));
    Ok(tenants)
}

/// Deletes a tenant and everything of it. Only an unrestricted caller may (a key locked to a
/// tenant cannot remove the tenant that bounds it), and the default tenant stays: kickstart
/// files and the hosted pages' fallbacks name it.
pub async fn delete_tenant<S: TenantStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: TenantId,
) -> FlowResult<()> {
    if !scope.is_unrestricted() {
        return Err(FlowError::Unauthorized);
    }
    if id == crate::domain::tenant::DEFAULT_TENANT_ID {
        return Err(ValidationErrors::field(FieldError::invalid(
            "tenantId",
            "The default tenant cannot be deleted.",
        ))
        .into());
    }
    match store.delete_tenant(id).await {
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        other => Ok(other?),
    }
}

/// Replaces the stored tenant `id` with `tenant` (a PUT, or a PATCH the edge merged), checked
/// as a whole. Ids and instants are not the caller's to change.
pub async fn update_tenant<S>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    id: TenantId,
    mut tenant: Tenant,
) -> FlowResult<Tenant>
where
    S: TenantStore + SigningKeyStore + TemplateStore + ?Sized,
{
    let current = self::tenant(store, scope, id).await?;
    tenant.id = current.id;
    tenant.insert_instant = current.insert_instant;
    tenant.last_update_instant = clock.now();
    if tenant.issuer.is_empty() {
        tenant.issuer.clone_from(&current.issuer);
    }
    if tenant.jwt_configuration.access_token_key_id.is_none() {
        // Every tenant signs with some key; a PUT that names none keeps the current one.
        tenant.jwt_configuration.access_token_key_id =
            current.jwt_configuration.access_token_key_id;
    }
    tenant.validate()?;
    for (field, now, before) in [
        (
            "tenant.jwtConfiguration.accessTokenKeyId",
            tenant.jwt_configuration.access_token_key_id,
            current.jwt_configuration.access_token_key_id,
        ),
        (
            "tenant.jwtConfiguration.idTokenKeyId",
            tenant.jwt_configuration.id_token_key_id,
            current.jwt_configuration.id_token_key_id,
        ),
    ] {
        if let Some(key_id) = now.filter(|k| Some(*k) != before) {
            require_usable_key(store, scope, tenant.id, key_id, field).await?;
        }
    }
    let before = current.email_template_references();
    for (field, template) in tenant.email_template_references() {
        if !before.contains(&(field, template)) {
            require_usable_template(store, tenant.id, template, field).await?;
        }
    }
    if tenant.issuer != current.issuer && !scope.is_unrestricted() {
        require_own_issuer(store, &tenant).await?;
    }
    store.update_tenant(&tenant).await?;
    Ok(tenant)
}

/// A caller scoped to one tenant may not give it an issuer another tenant's tokens carry, nor
/// one that differs from it only as verifiers overlook (case, default port, a trailing `/`): a
/// verifier that trusts an issuer would accept the other tenant's tokens as its own (S22, S36).
async fn require_own_issuer<S: TenantStore + ?Sized>(store: &S, tenant: &Tenant) -> FlowResult<()> {
    let wanted = crate::domain::tenant::normalized_issuer(&tenant.issuer);
    let taken = store.tenants().await?.iter().any(|other| {
        other.id != tenant.id && crate::domain::tenant::normalized_issuer(&other.issuer) == wanted
    });
    if taken {
        return Err(ValidationErrors::field(FieldError::new(
            "duplicate",
            "tenant.issuer",
            "Another tenant uses this issuer.",
        ))
        .into());
    }
    Ok(())
}
