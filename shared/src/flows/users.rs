//! Users through the management API: create, retrieve, replace, deactivate and reactivate,
//! delete, and search, each within the caller's tenant (S22).

use crate::domain::user::LoginIdType;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{ApplicationId, Registration, Tenant, TenantId, User, UserId};
use crate::ports::{
    ApplicationStore, Clock, StoreError, TemplateStore, TenantStore, UserStore, VerificationStore,
};

use super::tenancy::TenantScope;
use super::verification::{issue_after_create, Issued, VerificationKind, VerificationPorts};
use super::{duplicate, random_id_bytes, FlowError, FlowResult};

/// Creates a user without registrations (they have their own API, as in FusionAuth). The
/// email is stored lowercased, as FusionAuth stores it; password properties are dropped.
/// Under a tenant that verifies addresses, the new user's address gets a verification email
/// unless `skip_verification` (which marks it verified); the verification is answered too.
pub async fn create_user<S>(
    ports: &VerificationPorts<'_, S>,
    scope: &TenantScope,
    id: Option<UserId>,
    mut user: User,
    skip_verification: bool,
) -> FlowResult<(User, Option<Issued>)>
where
    S: TenantStore + UserStore + VerificationStore + TemplateStore + ?Sized,
{
    let (store, clock, entropy) = (ports.store, ports.clock, ports.entropy);
    let named = (!user.tenant_id.is_nil()).then_some(user.tenant_id);
    if let Some(named) = named.filter(|t| !scope.allows(*t)) {
        return Err(ValidationErrors::field(FieldError::invalid(
            "user.tenantId",
            format!("The tenant [{named}] does not match the X-FusionAuth-TenantId header."),
        ))
        .into());
    }
    let tenant_id = scope.resolve(store, named).await?;
    let Some(tenant) = store.tenant(tenant_id).await? else {
        return Err(ValidationErrors::field(FieldError::invalid(
            "user.tenantId",
            "The tenant does not exist.",
        ))
        .into());
    };
    let id = match id.or((!user.id.is_nil()).then_some(user.id)) {
        Some(id) => id,
        None => UserId::from_random_bytes(random_id_bytes(entropy)?),
    };
    let now = clock.now();
    user.drop_password_properties();
    user.id = id;
    user.tenant_id = tenant_id;
    user.email = user.email.map(|e| e.to_lowercase());
    user.registrations = Vec::new();
    user.insert_instant = now;
    user.last_update_instant = now;
    user.last_login_instant = None;
    user.verified = skip_verification;
    user.refuse_two_factor_import()?;
    user.validate()?;
    match store.insert_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Duplicate("user.id")) => {
            return Err(duplicate("userId", "A user with this id"))
        }
        Err(StoreError::Duplicate(field)) => {
            return Err(duplicate(field, "A user with this value"))
        }
        Err(e) => return Err(e.into()),
    }
    let verification = verify_new_address(ports, &tenant, &user).await?;
    Ok((user, verification))
}

/// The verification a user just created gets: one for the address when the tenant verifies
/// addresses and it is not verified already.
pub(crate) async fn verify_new_address<S>(
    ports: &VerificationPorts<'_, S>,
    tenant: &Tenant,
    user: &User,
) -> FlowResult<Option<Issued>>
where
    S: VerificationStore + TemplateStore + ?Sized,
{
    if !tenant.email_configuration.verify_email || user.verified || user.email.is_none() {
        return Ok(None);
    }
    issue_after_create(ports, tenant, None, user, VerificationKind::Email)
        .await
        .map(Some)
}

/// The user `id`, if the caller may see it.
pub async fn user<S: UserStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: UserId,
) -> FlowResult<User> {
    match store.user(id).await? {
        Some(user) if scope.allows(user.tenant_id) => Ok(user),
        _ => Err(FlowError::NotFound),
    }
}

/// The user of the caller's tenant whose login id of one of `kinds` (tried in order) is
/// `login_id`.
pub(crate) async fn user_by_login_id<S: TenantStore + UserStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    login_id: &str,
    kinds: &[LoginIdType],
) -> FlowResult<User> {
    let tenant = scope.resolve(store, None).await?;
    for kind in kinds {
        let found = match kind {
            LoginIdType::Email => store.user_by_email(tenant, login_id).await?,
            LoginIdType::Username => store.user_by_username(tenant, login_id).await?,
        };
        if let Some(user) = found {
            return Ok(user);
        }
    }
    Err(FlowError::NotFound)
}

/// Replaces the user `id` with `user` (a PUT, or a PATCH the edge merged). Its id, tenant,
/// registrations (their own API), verification and login history are not the caller's to
/// change here.
pub async fn update_user<S>(
    ports: &VerificationPorts<'_, S>,
    scope: &TenantScope,
    id: UserId,
    mut user: User,
) -> FlowResult<User>
where
    S: TenantStore + UserStore + VerificationStore + TemplateStore + ?Sized,
{
    let (store, clock) = (ports.store, ports.clock);
    let current = self::user(store, scope, id).await?;
    if !user.tenant_id.is_nil() && user.tenant_id != current.tenant_id {
        return Err(ValidationErrors::field(FieldError::invalid(
            "user.tenantId",
            "A user cannot move to another tenant.",
        ))
        .into());
    }
    // A new address is not verified by the old one's verification (ours: FusionAuth keeps the
    // flag unless the tenant re-verifies changed addresses), so no token claims it is.
    let address_changed = user.normalized_email() != current.normalized_email();
    user.drop_password_properties();
    user.id = current.id;
    user.tenant_id = current.tenant_id;
    user.email = user.email.map(|e| e.to_lowercase());
    user.registrations = current.registrations;
    user.insert_instant = current.insert_instant;
    user.last_login_instant = current.last_login_instant;
    user.verified = current.verified && !address_changed;
    user.two_factor = current.two_factor;
    user.last_update_instant = clock.now();
    user.validate()?;
    match store.update_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Duplicate(field)) => {
            return Err(duplicate(field, "A user with this value"))
        }
        Err(StoreError::Missing) => return Err(FlowError::NotFound),
        Err(e) => return Err(e.into()),
    }
    if address_changed {
        let tenant = super::tenancy::tenant_of(store, user.tenant_id).await?;
        let email = &tenant.email_configuration;
        if email.kept.get("verifyEmailWhenChanged") == Some(&serde_json::Value::Bool(true)) {
            verify_new_address(ports, &tenant, &user).await?;
        }
    }
    Ok(user)
}

/// Deactivates a user (FusionAuth's default: no login until reactivated), or with `hard`
/// deletes it, which frees its email and username.
pub async fn delete_user<S: UserStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    id: UserId,
    hard: bool,
) -> FlowResult<()> {
    let user = self::user(store, scope, id).await?;
    if hard {
        return match store.delete_user(user.id).await {
            Err(StoreError::Missing) => Err(FlowError::NotFound),
            other => Ok(other?),
        };
    }
    set_active(store, clock, user, false).await.map(|_| ())
}

/// `PUT /api/user/reactivate/{id}`.
pub(crate) async fn reactivate_user<S: UserStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    id: UserId,
) -> FlowResult<User> {
    let user = self::user(store, scope, id).await?;
    set_active(store, clock, user, true).await
}

async fn set_active<S: UserStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    mut user: User,
    active: bool,
) -> FlowResult<User> {
    user.active = active;
    user.last_update_instant = clock.now();
    match store.update_user(&user).await {
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        other => Ok(other.map(|()| user)?),
    }
}

/// What a search asks for: FusionAuth's `UserSearchCriteria` as far as this server answers it.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserSearch {
    /// Words each of which must begin the email, the username or a name (case-insensitive);
    /// a trailing `*` is allowed, and `*` alone (or nothing) matches everyone.
    pub query_string: Option<String>,
    /// Only these users.
    pub ids: Option<Vec<UserId>>,
    pub start_row: usize,
    pub number_of_results: usize,
}

/// FusionAuth's default page size.
pub(crate) const DEFAULT_SEARCH_RESULTS: usize = 25;

/// The most a page may hold.
pub(crate) const MAX_SEARCH_RESULTS: usize = 500;

pub(crate) struct Found {
    pub total: usize,
    pub users: Vec<User>,
}

/// Searches the caller's tenant (an unrestricted caller: every tenant). Matches are ordered by
/// email, then username, then id, so that pages are stable.
pub(crate) async fn search_users<S: TenantStore + UserStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    search: &UserSearch,
) -> FlowResult<Found> {
    let tenants: Vec<TenantId> = match scope.explicit {
        Some(tenant) => vec![tenant],
        None => store.tenants().await?.iter().map(|t| t.id).collect(),
    };
    let words: Vec<String> = search
        .query_string
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(|w| w.trim_end_matches('*').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let mut matches = Vec::new();
    for tenant in tenants {
        for user in store.users_of_tenant(tenant).await? {
            let listed = search.ids.as_ref().is_none_or(|ids| ids.contains(&user.id));
            if listed && words.iter().all(|word| begins_a_field(&user, word)) {
                matches.push(user);
            }
        }
    }
    matches.sort_by(|a, b| {
        (a.email.as_deref(), a.username.as_deref(), a.id).cmp(&(
            b.email.as_deref(),
            b.username.as_deref(),
            b.id,
        ))
    });
    let total = matches.len();
    let users = matches
        .into_iter()
        .skip(search.start_row)
        .take(search.number_of_results)
        .collect();
    Ok(Found { total, users })
}

fn begins_a_field(user: &User, word: &str) -> bool {
    [
        &user.email,
        &user.username,
        &user.first_name,
        &user.middle_name,
        &user.last_name,
        &user.full_name,
    ]
    .into_iter()
    .flatten()
    .any(|field| {
        field
            .to_lowercase()
            .split_whitespace()
            .any(|part| part.starts_with(word))
    })
}

/// The user's registration for an application.
pub async fn registration<S: UserStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    user_id: UserId,
    application_id: ApplicationId,
) -> FlowResult<Registration> {
    let user = self::user(store, scope, user_id).await?;
    user.registration(application_id)
        .cloned()
        .ok_or(FlowError::NotFound)
}

/// Replaces the user's registration for `registration.application_id`. Its id, creation and
/// last login, and verification stay; roles must be the application's.
pub(crate) async fn update_registration<S: ApplicationStore + UserStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    user_id: UserId,
    mut registration: Registration,
) -> FlowResult<Registration> {
    let mut user = self::user(store, scope, user_id).await?;
    let Some(current) = user.registration(registration.application_id).cloned() else {
        return Err(FlowError::NotFound);
    };
    let application = store
        .application(registration.application_id)
        .await?
        .ok_or(FlowError::NotFound)?;
    let mut errors = ValidationErrors::new();
    registration.check_kept(&mut errors, "registration");
    if let Some(role) = registration.roles.iter().find(|r| !application.has_role(r)) {
        errors.push(FieldError::invalid(
            "registration.roles",
            format!("The role [{role}] does not exist in the application."),
        ));
    }
    errors.into_result()?;
    registration.id = current.id;
    registration.insert_instant = current.insert_instant;
    registration.last_login_instant = current.last_login_instant;
    registration.verified = current.verified;
    for slot in &mut user.registrations {
        if slot.application_id == registration.application_id {
            *slot = registration.clone();
        }
    }
    user.last_update_instant = clock.now();
    user.validate()?;
    match store.update_user(&user).await {
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        other => Ok(other.map(|()| registration)?),
    }
}

/// Removes the user's registration for an application.
pub(crate) async fn delete_registration<S: UserStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    user_id: UserId,
    application_id: ApplicationId,
) -> FlowResult<()> {
    let mut user = self::user(store, scope, user_id).await?;
    if user.registration(application_id).is_none() {
        return Err(FlowError::NotFound);
    }
    user.registrations
        .retain(|r| r.application_id != application_id);
    user.last_update_instant = clock.now();
    match store.update_user(&user).await {
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        other => Ok(other?),
    }
}
