//! Email and registration verification, as FusionAuth does them: a verification id mailed in a
//! link (with a short one-time code for the `FormField` strategy), taken once to mark the
//! address or the registration verified; issued when a user or registration is created under
//! a tenant or application that verifies, and again on request.

use serde_json::{json, Value};
use tracing::{info, warn};

use crate::domain::generator::CodeGenerator;
use crate::domain::user::normalize_login_id;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::verification::{
    Verification, VerificationPurpose, VerificationStrategy, VerificationTaken, VerificationWanted,
};
use crate::domain::{
    Application, ApplicationId, Instant, Secret, TemplateId, Tenant, User, UserId,
};
use crate::ports::{
    ApplicationStore, Clock, Entropy, Mailer, TemplateStore, TenantStore, UserStore,
    VerificationStore,
};

use super::links::LinkBase;
use super::tenancy::TenantScope;
use super::{FlowError, FlowResult};

/// Which verification an endpoint is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationKind {
    Email,
    Registration,
}

impl VerificationKind {
    /// The hosted page's path segment (`/email/verify/…`, `/registration/verify/…`), which is
    /// also how FusionAuth's responses name the ids (`emailVerificationId`, …).
    pub fn path(self) -> &'static str {
        match self {
            VerificationKind::Email => "email",
            VerificationKind::Registration => "registration",
        }
    }
}

/// A verification just made: the id and the one-time code are known only now.
#[derive(Debug)]
pub struct Issued {
    pub id: Secret,
    pub one_time_code: Option<Secret>,
}

/// The ports issuing a verification uses.
pub struct VerificationPorts<'a, S: ?Sized> {
    pub store: &'a S,
    pub mailer: &'a dyn Mailer,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
    pub links: &'a LinkBase,
}

/// How the tenant (email) or the application (registration) wants its verifications made.
struct Settings {
    time_to_live_seconds: i64,
    id_generator: CodeGenerator,
    one_time_code_generator: CodeGenerator,
    strategy: VerificationStrategy,
    template: Option<TemplateId>,
}

fn settings(
    tenant: &Tenant,
    application: Option<&Application>,
    kind: VerificationKind,
) -> Settings {
    let ext = &tenant.external_identifier_configuration;
    match (kind, application) {
        (VerificationKind::Registration, Some(application)) => Settings {
            time_to_live_seconds: ext.registration_verification_id_time_to_live_in_seconds,
            id_generator: ext.registration_verification_id_generator,
            one_time_code_generator: ext.registration_verification_one_time_code_generator,
            strategy: application.verification_strategy.unwrap_or_default(),
            template: application.verification_email_template_id,
        },
        _ => Settings {
            time_to_live_seconds: ext.email_verification_id_time_to_live_in_seconds,
            id_generator: ext.email_verification_id_generator,
            one_time_code_generator: ext.email_verification_one_time_code_generator,
            strategy: tenant
                .email_configuration
                .verification_strategy
                .unwrap_or_default(),
            template: tenant.email_configuration.verification_email_template_id,
        },
    }
}

/// The hosted page a verification link opens.
pub(crate) fn verification_link(
    links: &LinkBase,
    kind: VerificationKind,
    id: &Secret,
    tenant: &Tenant,
) -> String {
    format!(
        "{}/{}/verify/{}?tenantId={}",
        links.0.trim_end_matches('/'),
        kind.path(),
        id.expose(),
        tenant.id
    )
}

/// Makes a verification of the user's address (`application` names the registration for a
/// registration verification) and mails it as `mailing` says, with the tenant's (or the
/// application's) verification template. A failed send leaves the verification stored.
pub(crate) async fn issue<S>(
    ports: &VerificationPorts<'_, S>,
    tenant: &Tenant,
    application: Option<&Application>,
    user: &User,
    kind: VerificationKind,
    mailing: Mailing,
) -> FlowResult<Issued>
where
    S: VerificationStore + TemplateStore + ?Sized,
{
    let Some(email) = user.email.clone() else {
        return Err(ValidationErrors::field(FieldError::blank("email")).into());
    };
    let settings = settings(tenant, application, kind);
    let purpose = match (kind, application) {
        (VerificationKind::Registration, Some(application)) => VerificationPurpose::Registration {
            application_id: application.id,
        },
        (VerificationKind::Registration, None) => {
            return Err(FlowError::Internal(
                "a registration verification without its application".into(),
            ))
        }
        (VerificationKind::Email, _) => VerificationPurpose::Email,
    };
    let now = ports.clock.now();
    let id = settings.id_generator.generate(ports.entropy)?;
    let one_time_code = match settings.strategy {
        VerificationStrategy::FormField => {
            Some(settings.one_time_code_generator.generate(ports.entropy)?)
        }
        VerificationStrategy::ClickableLink => None,
    };
    let verification = Verification {
        id_hash: id.hash(),
        one_time_code_hash: one_time_code.as_ref().map(Secret::hash),
        purpose,
        tenant_id: tenant.id,
        user_id: user.id,
        email: normalize_login_id(&email),
        insert_instant: now,
        expires_at: now.plus_secs(settings.time_to_live_seconds),
        failed_attempts: 0,
    };
    ports.store.insert_verification(&verification).await?;
    info!(user_id = %user.id, tenant_id = %tenant.id, kind = kind.path(), "user.verification.issued");
    let issued = Issued { id, one_time_code };
    match mailing {
        Mailing::No => {}
        Mailing::Required => {
            send_issued(ports, tenant, application, user, kind, &settings, &issued).await?;
        }
        Mailing::BestEffort => {
            let sent = send_issued(ports, tenant, application, user, kind, &settings, &issued);
            if let Err(e) = sent.await {
                warn!(user_id = %user.id, error = %e, kind = kind.path(), "the verification email could not be sent");
            }
        }
    }
    Ok(issued)
}

/// Whether issuing a verification mails it, and whether a failed mail fails the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mailing {
    No,
    Required,
    /// Logged and not undone: what was created stays, and the mail can be sent again.
    BestEffort,
}

/// Issues and mails a verification for something just created (or a login that needs one); a
/// mail that fails is logged and undoes nothing (the verification can be sent again).
pub(crate) async fn issue_after_create<S>(
    ports: &VerificationPorts<'_, S>,
    tenant: &Tenant,
    application: Option<&Application>,
    user: &User,
    kind: VerificationKind,
) -> FlowResult<Issued>
where
    S: VerificationStore + TemplateStore + ?Sized,
{
    issue(ports, tenant, application, user, kind, Mailing::BestEffort).await
}

/// Mails a verification already stored (the one `issued` names) with the tenant's (email) or
/// the application's (registration) verification template, which saving them made sure of.
async fn send_issued<S>(
    ports: &VerificationPorts<'_, S>,
    tenant: &Tenant,
    application: Option<&Application>,
    user: &User,
    kind: VerificationKind,
    settings: &Settings,
    issued: &Issued,
) -> FlowResult<()>
where
    S: VerificationStore + TemplateStore + ?Sized,
{
    let (Some(template_id), Some(email)) = (settings.template, user.email.clone()) else {
        return Ok(());
    };
    let registration = application.and_then(|a| user.registration(a.id));
    let context = json!({
        "verificationId": issued.id.expose(),
        "verificationOneTimeCode": issued.one_time_code.as_ref().map(Secret::expose),
        "user": user,
        "tenant": tenant,
        "application": application,
        "registration": registration,
        "timeToLive": settings.time_to_live_seconds,
        "url": verification_link(ports.links, kind, &issued.id, tenant),
    });
    let sent = super::mail::send_template(
        ports.store,
        ports.mailer,
        &super::mail::TemplatedEmail {
            tenant,
            template_id,
            to_email: email,
            user,
            context: &context,
            field: "email",
        },
        ports.clock.now(),
    )
    .await?;
    info!(user_id = %user.id, message_id = %sent.message_id, kind = kind.path(), "user.verification.sent");
    Ok(())
}

/// Marks what a verification proves: the address, or the registration, stamped with FusionAuth's
/// `verifiedInstant` the first time.
fn mark_verified(user: &mut User, purpose: VerificationPurpose, now: Instant) -> bool {
    let stamp = Value::from(now.as_millis());
    match purpose {
        VerificationPurpose::Email => {
            user.verified = true;
            user.kept.entry("verifiedInstant").or_insert(stamp);
            true
        }
        VerificationPurpose::Registration { application_id } => {
            match user.registration_mut(application_id) {
                Some(registration) => {
                    registration.verified = true;
                    registration.kept.entry("verifiedInstant").or_insert(stamp);
                    true
                }
                None => false,
            }
        }
    }
}

/// Takes a verification by its id (and one-time code) and marks what it proves. Unknown,
/// expired, used, another tenant's, and one whose address has changed since it was mailed are
/// all 404; a missing one-time code is `[blank]oneTimeCode` and leaves it; a wrong one is
/// `[invalid]verificationId` (as FusionAuth answers) and counts (S7).
pub async fn verify<S>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    kind: VerificationKind,
    id: &Secret,
    one_time_code: Option<&Secret>,
) -> FlowResult<User>
where
    S: VerificationStore + UserStore + ?Sized,
{
    let now = clock.now();
    // Only a verification of the kind and tenant asked for is touched (N17).
    let wanted = VerificationWanted {
        kind: match kind {
            VerificationKind::Email => "email",
            VerificationKind::Registration => "registration",
        },
        tenant: scope.explicit,
    };
    let taken = store
        .take_verification(
            &id.hash(),
            one_time_code.map(Secret::hash).as_ref(),
            wanted,
            now,
        )
        .await?;
    let verification = match taken {
        VerificationTaken::Taken(verification) => *verification,
        VerificationTaken::WrongOneTimeCode { missing: true } => {
            return Err(ValidationErrors::field(FieldError::blank("oneTimeCode")).into())
        }
        VerificationTaken::WrongOneTimeCode { missing: false } => {
            warn!("user.verification.failed: wrong one-time code");
            return Err(ValidationErrors::field(FieldError::invalid(
                "verificationId",
                "The one-time code is not the one sent with this verification.",
            ))
            .into());
        }
        VerificationTaken::Nothing => return Err(FlowError::NotFound),
    };
    let of_kind = matches!(
        (kind, verification.purpose),
        (VerificationKind::Email, VerificationPurpose::Email)
            | (
                VerificationKind::Registration,
                VerificationPurpose::Registration { .. }
            )
    );
    if !of_kind || !scope.allows(verification.tenant_id) {
        return Err(FlowError::NotFound);
    }
    let mut user = match store.user(verification.user_id).await? {
        Some(user) if user.tenant_id == verification.tenant_id => user,
        _ => return Err(FlowError::NotFound),
    };
    if user.normalized_email().as_deref() != Some(verification.email.as_str()) {
        // Mailed to an address the user no longer has: it proves nothing about the current one.
        return Err(FlowError::NotFound);
    }
    if !mark_verified(&mut user, verification.purpose, now) {
        return Err(FlowError::NotFound);
    }
    user.last_update_instant = now;
    store.update_user(&user).await?;
    info!(user_id = %user.id, kind = kind.path(), "user.verification.completed");
    Ok(user)
}

/// `POST /api/user/verify-email` with a `userId` and an API key: marks the address verified
/// without a verification, as an operator may.
pub(crate) async fn verify_by_user_id<S: UserStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    user_id: UserId,
) -> FlowResult<User> {
    if !scope.authenticated {
        return Err(FlowError::Unauthorized);
    }
    let mut user = match store.user(user_id).await? {
        Some(user) if scope.allows(user.tenant_id) => user,
        _ => return Err(FlowError::NotFound),
    };
    let now = clock.now();
    mark_verified(&mut user, VerificationPurpose::Email, now);
    user.last_update_instant = now;
    store.update_user(&user).await?;
    Ok(user)
}

/// `PUT /api/user/verify-email` and `/verify-registration`: a new verification for the user
/// `email` names, mailed unless `send` is false; the tenant must verify addresses (the
/// application, registrations), else `Disabled`.
pub(crate) async fn reissue<S>(
    ports: &VerificationPorts<'_, S>,
    scope: &TenantScope,
    kind: VerificationKind,
    email: &str,
    application_id: Option<ApplicationId>,
    send: bool,
) -> FlowResult<Issued>
where
    S: VerificationStore + TemplateStore + TenantStore + ApplicationStore + UserStore + ?Sized,
{
    let store = ports.store;
    if email.trim().is_empty() {
        return Err(ValidationErrors::field(FieldError::blank("email")).into());
    }
    let application = match application_id {
        Some(id) => Some(super::tenancy::application_in_scope(store, scope, id).await?),
        None if kind == VerificationKind::Registration => {
            return Err(ValidationErrors::field(FieldError::missing("applicationId")).into())
        }
        None => None,
    };
    let tenant_id = scope
        .resolve(store, application.as_ref().map(|a| a.tenant_id))
        .await?;
    // A tenant header that names no tenant finds no user either.
    let tenant = store.tenant(tenant_id).await?.ok_or(FlowError::NotFound)?;
    let enabled = match (kind, &application) {
        (VerificationKind::Registration, Some(application)) => application.verify_registration,
        _ => tenant.email_configuration.verify_email,
    };
    if !enabled {
        return Err(FlowError::Disabled);
    }
    let user = store
        .user_by_email(tenant.id, &normalize_login_id(email))
        .await?
        .ok_or(FlowError::NotFound)?;
    if kind == VerificationKind::Registration
        && application
            .as_ref()
            .is_none_or(|a| user.registration(a.id).is_none())
    {
        return Err(FlowError::NotFound);
    }
    let mailing = if send { Mailing::Required } else { Mailing::No };
    issue(ports, &tenant, application.as_ref(), &user, kind, mailing).await
}

/// The verification a 212 or 213 login answers: for the `FormField` strategy only, as in
/// FusionAuth, where the person types the emailed code next. Only the hashes of earlier
/// verifications are kept, so a fresh one is made and mailed (ours).
pub(crate) async fn for_unverified_login<S>(
    ports: &VerificationPorts<'_, S>,
    user: &User,
    application_id: ApplicationId,
    kind: VerificationKind,
) -> FlowResult<Option<Issued>>
where
    S: VerificationStore + TemplateStore + TenantStore + ApplicationStore + ?Sized,
{
    let store = ports.store;
    let (Some(tenant), Some(application)) = (
        store.tenant(user.tenant_id).await?,
        store.application(application_id).await?,
    ) else {
        return Ok(None);
    };
    let strategy = match kind {
        VerificationKind::Email => tenant.email_configuration.verification_strategy,
        VerificationKind::Registration => application.verification_strategy,
    };
    if strategy != Some(VerificationStrategy::FormField) {
        return Ok(None);
    }
    let application = (kind == VerificationKind::Registration).then_some(&application);
    issue_after_create(ports, &tenant, application, user, kind)
        .await
        .map(Some)
}
