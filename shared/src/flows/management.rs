//! The part of FusionAuth's management API that kickstart files and the Python client need:
//! tenants, applications, users with registrations, email templates and API keys.

use serde_json::Value;

use crate::domain::application::ApplicationRole;
use crate::domain::ids::{RegistrationId, RoleId};
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{
    Application, ApplicationId, EmailTemplate, KeyId, Registration, SigningKey, TemplateId, Tenant,
    TenantId, User, UserId,
};
use crate::ports::{
    ApplicationStore, Clock, Entropy, KeyMaker, KeyVault, RefreshTokenStore, SigningKeyStore,
    StoreError, TemplateStore, TenantStore, UserStore, VerificationStore,
};

use super::tenancy::TenantScope;
use super::tokens::{
    issue_access_token_for, issue_refresh_token, AccessToken, Issuing, RefreshToken,
};
use super::users::verify_new_address;
use super::verification::{issue_after_create, Issued, VerificationKind, VerificationPorts};
use super::{duplicate, random_id_bytes, FlowError, FlowResult};

/// Everything tenant creation needs besides the store.
pub struct TenantMaking<'a> {
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
pub async fn create_tenant<S>(
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
            let key = super::keys::seal(making.vault, &made, Some(id), now).await?;
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

/// A signing key objects of `tenant` may name (S22): the tenant's own, or a global key that only
/// an unrestricted caller may assign. Anything else reads as a key that does not exist.
async fn require_usable_key<S: SigningKeyStore + ?Sized>(
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
async fn require_usable_template<S: TemplateStore + ?Sized>(
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
pub async fn create_role<S: ApplicationStore + ?Sized>(
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
pub async fn update_role<S: ApplicationStore + ?Sized>(
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
pub async fn delete_role<S: ApplicationStore + ?Sized>(
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

/// The tenant an object names in its body (nil: none), which must agree with the header or key
/// (FusionAuth answers a conflicting header 400).
fn named_tenant(named: TenantId, field: &str, scope: &TenantScope) -> FlowResult<Option<TenantId>> {
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

pub struct Registered {
    pub user: User,
    pub registration: Registration,
    /// The application and its tenant, as the registration found them.
    pub application: Application,
    pub tenant: Tenant,
    /// The new user's address verification, under a tenant that verifies addresses.
    pub email_verification: Option<Issued>,
    /// The new registration's verification, for an application that verifies them.
    pub registration_verification: Option<Issued>,
}

/// What the combined user-and-registration create answers with besides the objects, as
/// FusionAuth's does: an access token (`authenticationType` `REGISTRATION`) and, where the
/// application makes them, a refresh token.
pub struct RegistrationTokens {
    pub access: AccessToken,
    pub refresh: Option<RefreshToken>,
}

/// Tokens for a user the combined create just made. Only for a new user: answering a token
/// for registering an existing one would hand a key allowed to register a token for any
/// account of its tenant.
pub async fn registration_tokens<S>(
    store: &S,
    vault: &dyn KeyVault,
    entropy: &dyn Entropy,
    clock: &dyn Clock,
    registered: &Registered,
) -> FlowResult<RegistrationTokens>
where
    S: SigningKeyStore + RefreshTokenStore + ?Sized,
{
    let now = clock.now();
    let (application, tenant) = (&registered.application, &registered.tenant);
    let refresh = if application.login_configuration.generate_refresh_tokens {
        Some(
            issue_refresh_token(
                store,
                entropy,
                tenant,
                application,
                &registered.user,
                now,
                None,
                false,
            )
            .await?,
        )
    } else {
        None
    };
    let issuing = Issuing {
        tenant,
        application,
        user: &registered.user,
        now,
        authentication_type: "REGISTRATION",
    };
    let session = refresh.as_ref().map(|r| r.id);
    let access = issue_access_token_for(store, vault, entropy, &issuing, session).await?;
    Ok(RegistrationTokens { access, refresh })
}

/// `POST /api/user/registration[/{userId}]` as the flow receives it.
pub struct RegisterCommand {
    pub registration: Registration,
    /// With a user, the user and the registration are created together.
    pub user: Option<User>,
    pub skip_verification: bool,
    pub skip_registration_verification: bool,
}

/// Registers a user for an application, creating the user too when the command carries one.
/// Passwords are not a thing here: the edge drops any password field.
pub async fn register<S>(
    ports: &VerificationPorts<'_, S>,
    scope: &TenantScope,
    user_id: Option<UserId>,
    command: RegisterCommand,
) -> FlowResult<Registered>
where
    S: TenantStore + ApplicationStore + UserStore + VerificationStore + TemplateStore + ?Sized,
{
    let (store, entropy) = (ports.store, ports.entropy);
    let now = ports.clock.now();
    let RegisterCommand {
        mut registration,
        user,
        skip_verification,
        skip_registration_verification,
    } = command;
    if registration.application_id.is_nil() {
        return Err(
            ValidationErrors::field(FieldError::missing("registration.applicationId")).into(),
        );
    }
    let application = match store.application(registration.application_id).await? {
        Some(app) if scope.allows(app.tenant_id) => app,
        _ => {
            return Err(ValidationErrors::field(FieldError::invalid(
                "registration.applicationId",
                "The application does not exist.",
            ))
            .into())
        }
    };
    // Both branches below stay in the application's tenant: one read serves them.
    let tenant = super::passwordless::tenant_of(store, application.tenant_id).await?;
    let mut kept_errors = ValidationErrors::new();
    registration.check_kept(&mut kept_errors, "registration");
    kept_errors.into_result()?;
    registration.id = RegistrationId::from_random_bytes(random_id_bytes(entropy)?);
    registration.insert_instant = now;
    registration.last_login_instant = None;
    // Verified unless the application verifies registrations and the caller did not skip it.
    registration.verified = skip_registration_verification || !application.verify_registration;
    if registration.verified {
        registration
            .kept
            .entry("verifiedInstant")
            .or_insert(Value::from(now.as_millis()));
    }
    if registration.roles.is_empty() {
        registration.roles = application.default_roles();
    }
    if let Some(role) = registration.roles.iter().find(|r| !application.has_role(r)) {
        return Err(ValidationErrors::field(FieldError::invalid(
            "registration.roles",
            format!("The role [{role}] does not exist in the application."),
        ))
        .into());
    }

    match user {
        Some(mut user) => {
            let id = match user_id.or((!user.id.is_nil()).then_some(user.id)) {
                Some(id) => id,
                None => UserId::from_random_bytes(random_id_bytes(entropy)?),
            };
            let tenant_id = named_tenant(user.tenant_id, "user.tenantId", scope)?
                .unwrap_or(application.tenant_id);
            if tenant_id != application.tenant_id {
                return Err(ValidationErrors::field(FieldError::invalid(
                    "registration.applicationId",
                    "The application belongs to another tenant.",
                ))
                .into());
            }
            user.drop_password_properties();
            user.email = user.email.map(|e| e.to_lowercase());
            user.id = id;
            user.tenant_id = tenant_id;
            user.insert_instant = now;
            user.last_update_instant = now;
            user.last_login_instant = None;
            user.verified = skip_verification;
            user.registrations = vec![registration.clone()];
            user.refuse_two_factor_import()?;
            user.validate()?;
            match store.insert_user(&user).await {
                Ok(()) => {}
                Err(StoreError::Duplicate("user.id")) => {
                    return Err(duplicate("user.id", "A user with this id"))
                }
                Err(StoreError::Duplicate(field)) => {
                    return Err(duplicate(field, "A user with this value"))
                }
                Err(e) => return Err(e.into()),
            }
            let email_verification = verify_new_address(ports, &tenant, &user).await?;
            let registration_verification =
                verify_new_registration(ports, &tenant, &application, &user, &registration).await?;
            Ok(Registered {
                user,
                registration,
                application,
                tenant,
                email_verification,
                registration_verification,
            })
        }
        None => {
            let Some(user_id) = user_id else {
                return Err(ValidationErrors::field(FieldError::missing("user")).into());
            };
            let mut user = match store.user(user_id).await? {
                Some(u) if u.tenant_id == application.tenant_id => u,
                _ => {
                    return Err(ValidationErrors::field(FieldError::invalid(
                        "userId",
                        "The user does not exist.",
                    ))
                    .into())
                }
            };
            if user.registration(application.id).is_some() {
                return Err(duplicate(
                    "registration.applicationId",
                    "A registration for this application",
                ));
            }
            user.registrations.push(registration.clone());
            user.last_update_instant = now;
            store.update_user(&user).await?;
            let registration_verification =
                verify_new_registration(ports, &tenant, &application, &user, &registration).await?;
            Ok(Registered {
                user,
                registration,
                application,
                tenant,
                email_verification: None,
                registration_verification,
            })
        }
    }
}

/// The verification a registration just made gets when it is not verified.
async fn verify_new_registration<S>(
    ports: &VerificationPorts<'_, S>,
    tenant: &Tenant,
    application: &Application,
    user: &User,
    registration: &Registration,
) -> FlowResult<Option<Issued>>
where
    S: VerificationStore + TemplateStore + ?Sized,
{
    if registration.verified || user.email.is_none() {
        return Ok(None);
    }
    issue_after_create(
        ports,
        tenant,
        Some(application),
        user,
        VerificationKind::Registration,
    )
    .await
    .map(Some)
}

/// Creates an email template. A caller scoped to a tenant makes one of that tenant's templates;
/// an unrestricted caller makes a global one, or one of the tenant its body names (S29).
pub async fn create_email_template<S>(
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

pub use super::api_keys::{create_api_key, Permissible};

/// All public signing keys, for the JWKS.
pub async fn public_keys<S: SigningKeyStore + ?Sized>(store: &S) -> FlowResult<Vec<Value>> {
    Ok(store
        .signing_keys()
        .await?
        .iter()
        .filter_map(SigningKey::jwk)
        .collect())
}

/// One tenant's public keys: those it owns and the global keys it signs with (S22), so a
/// verifier of this tenant's tokens trusts no other tenant's key.
pub async fn tenant_public_keys<S: TenantStore + SigningKeyStore + ?Sized>(
    store: &S,
    tenant: TenantId,
) -> FlowResult<Vec<Value>> {
    let tenant = store.tenant(tenant).await?.ok_or(FlowError::NotFound)?;
    let configured = [
        tenant.jwt_configuration.access_token_key_id,
        tenant.jwt_configuration.id_token_key_id,
    ];
    Ok(store
        .signing_keys()
        .await?
        .iter()
        .filter(|key| match key.tenant_id {
            Some(owner) => owner == tenant.id,
            None => configured.contains(&Some(key.id)),
        })
        .filter_map(SigningKey::jwk)
        .collect())
}
