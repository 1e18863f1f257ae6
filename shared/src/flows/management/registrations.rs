//! Registrations: a user registered for an application, alone or made together with the
//! user (then with tokens, as FusionAuth answers).

use serde_json::Value;

use crate::domain::ids::RegistrationId;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Application, Instant, Registration, Tenant, User, UserId};
use crate::ports::{
    ApplicationStore, Clock, Entropy, KeyVault, RefreshTokenStore, SigningKeyStore, StoreError,
    TemplateStore, TenantStore, UserStore, VerificationStore,
};

use crate::flows::tenancy::TenantScope;
use crate::flows::tokens::{
    issue_access_token_for, issue_refresh_token, AccessToken, Issuing, RefreshToken,
};
use crate::flows::users::verify_new_address;
use crate::flows::verification::{issue_after_create, Issued, VerificationKind, VerificationPorts};
use crate::flows::{duplicate, random_id_bytes, FlowResult};

use super::named_tenant;

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
pub(crate) struct RegistrationTokens {
    pub access: AccessToken,
    pub refresh: Option<RefreshToken>,
}

/// Tokens for a user the combined create just made. Only for a new user: answering a token
/// for registering an existing one would hand a key allowed to register a token for any
/// account of its tenant.
pub(crate) async fn registration_tokens<S>(
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
    let RegisterCommand {
        registration,
        user,
        skip_verification,
        skip_registration_verification,
    } = command;
    let application = registering_application(ports.store, scope, &registration).await?;
    // Both branches below stay in the application's tenant: one read serves them.
    let tenant = crate::flows::tenancy::tenant_of(ports.store, application.tenant_id).await?;
    let registration = new_registration(
        registration,
        &application,
        skip_registration_verification,
        ports.clock.now(),
        ports.entropy,
    )?;
    let (user, email_verification) = match user {
        Some(user) => {
            let user = insert_registered_user(
                ports,
                scope,
                (user_id, user),
                &application,
                &registration,
                skip_verification,
            )
            .await?;
            let email_verification = verify_new_address(ports, &tenant, &user).await?;
            (user, email_verification)
        }
        None => {
            let Some(user_id) = user_id else {
                return Err(ValidationErrors::field(FieldError::missing("user")).into());
            };
            let user = add_registration(ports, user_id, &application, &registration).await?;
            (user, None)
        }
    };
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

/// The application a registration names, which the caller's scope must reach.
async fn registering_application<S: ApplicationStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    registration: &Registration,
) -> FlowResult<Application> {
    if registration.application_id.is_nil() {
        return Err(
            ValidationErrors::field(FieldError::missing("registration.applicationId")).into(),
        );
    }
    match store.application(registration.application_id).await? {
        Some(application) if scope.allows(application.tenant_id) => Ok(application),
        _ => Err(ValidationErrors::field(FieldError::invalid(
            "registration.applicationId",
            "The application does not exist.",
        ))
        .into()),
    }
}

/// The registration as it is stored: a fresh id, verified unless the application verifies
/// registrations and the caller did not skip it, the application's default roles when it names
/// none, and only roles the application has.
fn new_registration(
    mut registration: Registration,
    application: &Application,
    skip_verification: bool,
    now: Instant,
    entropy: &dyn Entropy,
) -> FlowResult<Registration> {
    let mut kept_errors = ValidationErrors::new();
    registration.check_kept(&mut kept_errors, "registration");
    kept_errors.into_result()?;
    registration.id = RegistrationId::from_random_bytes(random_id_bytes(entropy)?);
    registration.insert_instant = now;
    registration.last_login_instant = None;
    registration.verified = skip_verification || !application.verify_registration;
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
    Ok(registration)
}

/// A new user made with its first registration, in the application's tenant.
async fn insert_registered_user<S: UserStore + ?Sized>(
    ports: &VerificationPorts<'_, S>,
    scope: &TenantScope,
    (user_id, mut user): (Option<UserId>, User),
    application: &Application,
    registration: &Registration,
    skip_verification: bool,
) -> FlowResult<User> {
    let now = ports.clock.now();
    let id = match user_id.or((!user.id.is_nil()).then_some(user.id)) {
        Some(id) => id,
        None => UserId::from_random_bytes(random_id_bytes(ports.entropy)?),
    };
    let tenant_id =
        named_tenant(user.tenant_id, "user.tenantId", scope)?.unwrap_or(application.tenant_id);
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
    match ports.store.insert_user(&user).await {
        Ok(()) => Ok(user),
        Err(StoreError::Duplicate("user.id")) => Err(duplicate("user.id", "A user with this id")),
        Err(StoreError::Duplicate(field)) => Err(duplicate(field, "A user with this value")),
        Err(e) => Err(e.into()),
    }
}

/// An existing user of the application's tenant registered for one more application.
async fn add_registration<S: UserStore + ?Sized>(
    ports: &VerificationPorts<'_, S>,
    user_id: UserId,
    application: &Application,
    registration: &Registration,
) -> FlowResult<User> {
    let mut user = match ports.store.user(user_id).await? {
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
    user.last_update_instant = ports.clock.now();
    ports.store.update_user(&user).await?;
    Ok(user)
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
