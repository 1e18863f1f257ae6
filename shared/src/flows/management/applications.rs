//! Applications and their roles.

use crate::domain::application::ApplicationRole;
use crate::domain::ids::RoleId;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Application, ApplicationId};
use crate::ports::{
    ApplicationStore, Clock, Entropy, SigningKeyStore, StoreError, TemplateStore, TenantStore,
    UserStore,
};

use crate::flows::tenancy::TenantScope;
use crate::flows::{duplicate, random_id_bytes, FlowError, FlowResult};

use super::{named_tenant, require_usable_key, require_usable_template};

/// Generated client secrets: 32 random bytes, 43 characters of base64url as FusionAuth's are.
const CLIENT_SECRET: crate::domain::CodeGenerator = crate::domain::CodeGenerator {
    length: 32,
    kind: crate::domain::GeneratorType::RandomBytes,
};

/// Creates an application. Its OAuth client secret (named or generated) is kept in the returned
/// value for the create response only; the store keeps its hash.
pub async fn create_application<S>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    scope: &TenantScope,
    id: Option<ApplicationId>,
    mut application: Application,
) -> FlowResult<Application>
where
    S: TenantStore + ApplicationStore + TemplateStore + SigningKeyStore + ?Sized,
{
    let now = clock.now();
    let id = match id {
        Some(id) => id,
        None => ApplicationId::from_random_bytes(random_id_bytes(entropy)?),
    };
    let named = named_tenant(application.tenant_id, "application.tenantId", scope)?;
    let tenant_id = scope.resolve(store, named).await?;
    if store.tenant(tenant_id).await?.is_none() {
        return Err(ValidationErrors::field(FieldError::invalid(
            "application.tenantId",
            "The tenant does not exist.",
        ))
        .into());
    }
    application.id = id;
    application.tenant_id = tenant_id;
    application.insert_instant = now;
    application.last_update_instant = now;
    application.validate()?;
    for role in &mut application.roles {
        if role.id.as_uuid().is_nil() {
            role.id = RoleId::from_random_bytes(random_id_bytes(entropy)?);
        }
    }
    if application.oauth_configuration.client_id.is_none() {
        application.oauth_configuration.client_id = Some(id.to_string());
    }
    let client_secret = match application.oauth_configuration.client_secret.take() {
        Some(named) => named,
        None => CLIENT_SECRET.generate(entropy)?,
    };
    application.oauth_configuration.client_secret_hash = Some(client_secret.hash());
    application.oauth_configuration.client_secret = Some(client_secret);
    for (field, template) in application.email_template_references() {
        require_usable_template(store, tenant_id, template, field).await?;
    }
    for (field, key) in [
        (
            "application.jwtConfiguration.accessTokenKeyId",
            application.jwt_configuration.access_token_key_id,
        ),
        (
            "application.jwtConfiguration.idTokenKeyId",
            application.jwt_configuration.id_token_key_id,
        ),
    ] {
        if let Some(key) = key {
            require_usable_key(store, scope, tenant_id, key, field).await?;
        }
    }
    match store.insert_application(&application).await {
        Err(StoreError::Duplicate(_)) => {
            Err(duplicate("applicationId", "An application with this id"))
        }
        other => Ok(other.map(|()| application)?),
    }
}

/// The application `id`, if the caller may see it.
pub async fn application<S: ApplicationStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: ApplicationId,
) -> FlowResult<Application> {
    match store.application(id).await? {
        Some(a) if scope.allows(a.tenant_id) => Ok(a),
        _ => Err(FlowError::NotFound),
    }
}

/// The applications the caller may see: the active ones, or (as FusionAuth's `inactive=true`
/// asks) the deactivated ones.
pub async fn applications<S: ApplicationStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    inactive: bool,
) -> FlowResult<Vec<Application>> {
    let mut applications = store.applications().await?;
    applications.retain(|a| scope.allows(a.tenant_id) && a.active != inactive);
    Ok(applications)
}

/// What an update of an application changes besides its fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApplicationUpdate {
    /// FusionAuth's `?reactivate=true`: the application becomes active again.
    pub reactivate: bool,
}

/// Replaces the stored application `id` with `application` (a PUT, or a PATCH the edge merged),
/// checked as a whole. Its id, tenant, creation instant, client id and roles are not changed
/// here (roles have their own routes, as in FusionAuth); a client secret named in the update
/// replaces the old one and is shown once, in this response.
pub async fn update_application<S>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    id: ApplicationId,
    mut application: Application,
    update: ApplicationUpdate,
) -> FlowResult<Application>
where
    S: ApplicationStore + TemplateStore + SigningKeyStore + ?Sized,
{
    let current = self::application(store, scope, id).await?;
    if !application.tenant_id.is_nil() && application.tenant_id != current.tenant_id {
        return Err(ValidationErrors::field(FieldError::invalid(
            "application.tenantId",
            "An application cannot move to another tenant.",
        ))
        .into());
    }
    application.id = current.id;
    application.tenant_id = current.tenant_id;
    application.insert_instant = current.insert_instant;
    application.last_update_instant = clock.now();
    application.roles.clone_from(&current.roles);
    application
        .oauth_configuration
        .client_id
        .clone_from(&current.oauth_configuration.client_id);
    application.oauth_configuration.client_secret_hash =
        match &application.oauth_configuration.client_secret {
            Some(secret) => Some(secret.hash()),
            None => current.oauth_configuration.client_secret_hash,
        };
    if update.reactivate {
        application.active = true;
    }
    application.validate()?;
    let before = current.email_template_references();
    for (field, template) in application.email_template_references() {
        if !before.contains(&(field, template)) {
            require_usable_template(store, current.tenant_id, template, field).await?;
        }
    }
    for (field, now, before) in [
        (
            "application.jwtConfiguration.accessTokenKeyId",
            application.jwt_configuration.access_token_key_id,
            current.jwt_configuration.access_token_key_id,
        ),
        (
            "application.jwtConfiguration.idTokenKeyId",
            application.jwt_configuration.id_token_key_id,
            current.jwt_configuration.id_token_key_id,
        ),
    ] {
        if let Some(key_id) = now.filter(|k| Some(*k) != before) {
            require_usable_key(store, scope, current.tenant_id, key_id, field).await?;
        }
    }
    store.update_application(&application).await?;
    Ok(application)
}

/// Deactivates an application (FusionAuth's default), or with `hard` deletes it and every
/// registration for it.
pub async fn delete_application<S>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    id: ApplicationId,
    hard: bool,
) -> FlowResult<()>
where
    S: ApplicationStore + UserStore + ?Sized,
{
    let mut application = self::application(store, scope, id).await?;
    if !hard {
        application.active = false;
        application.last_update_instant = clock.now();
        return Ok(store.update_application(&application).await?);
    }
    // The application goes first: from then on no login for it starts or finishes.
    store.delete_application(id).await?;
    for mut user in store.users_of_tenant(application.tenant_id).await? {
        if user.registration(id).is_none() {
            continue;
        }
        user.registrations.retain(|r| r.application_id != id);
        user.last_update_instant = clock.now();
        match store.update_user(&user).await {
            // Deleted meanwhile: nothing left to clean.
            Ok(()) | Err(StoreError::Missing) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Adds a role to an application (`roleId` from the path, else a fresh one).
pub(crate) async fn create_role<S: ApplicationStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    scope: &TenantScope,
    application_id: ApplicationId,
    role_id: Option<RoleId>,
    mut role: ApplicationRole,
) -> FlowResult<ApplicationRole> {
    let mut application = self::application(store, scope, application_id).await?;
    role.id = match role_id {
        Some(id) => id,
        None => RoleId::from_random_bytes(random_id_bytes(entropy)?),
    };
    if application.roles.iter().any(|r| r.id == role.id) {
        return Err(duplicate("roleId", "A role with this id"));
    }
    application.roles.push(role.clone());
    save_roles(store, clock, application).await?;
    Ok(role)
}

/// Replaces one role of an application.
pub(crate) async fn update_role<S: ApplicationStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    application_id: ApplicationId,
    role_id: RoleId,
    mut role: ApplicationRole,
) -> FlowResult<ApplicationRole> {
    let mut application = self::application(store, scope, application_id).await?;
    let Some(slot) = application.roles.iter_mut().find(|r| r.id == role_id) else {
        return Err(FlowError::NotFound);
    };
    role.id = role_id;
    *slot = role.clone();
    save_roles(store, clock, application).await?;
    Ok(role)
}

/// Removes one role of an application.
pub(crate) async fn delete_role<S: ApplicationStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    application_id: ApplicationId,
    role_id: RoleId,
) -> FlowResult<()> {
    let mut application = self::application(store, scope, application_id).await?;
    let before = application.roles.len();
    application.roles.retain(|r| r.id != role_id);
    if application.roles.len() == before {
        return Err(FlowError::NotFound);
    }
    save_roles(store, clock, application).await
}

async fn save_roles<S: ApplicationStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    mut application: Application,
) -> FlowResult<()> {
    application.validate().map_err(|errors| {
        // The application's rules name `application.roles…`; here the request is one role.
        let mut renamed = ValidationErrors::new();
        for mut error in errors.field_errors {
            let field = error.field.replacen("application.roles", "role", 1);
            error.code = error.code.replacen("application.roles", "role", 1);
            error.field = field;
            renamed.push(error);
        }
        renamed
    })?;
    application.last_update_instant = clock.now();
    Ok(store.update_application(&application).await?)
}
