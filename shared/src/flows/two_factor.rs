//! Two-factor sign-in after the magic link, as FusionAuth does it: methods enrolled with a
//! first valid code (an authenticator app, or codes by email), recovery codes shown once, the
//! pending second step of a login (242 and `/api/two-factor/login`), trusted browsers, and
//! removal with a code of the method or a recovery code.
//!
//! Every code is checked in constant time (S3); a wrong one is counted on the pending step
//! before anything else and the fifth ends it (S7); a step, a mailed code, a recovery code and
//! an authenticator's time step each work once (S5). Secrets are sealed (S26), ids and codes
//! stored hashed (S2), and no code or secret reaches the logs (S12).

use serde_json::json;
use tracing::{info, warn};

use crate::domain::generator::CodeGenerator;
use crate::domain::oauth::AuthorizationRequest;
use crate::domain::two_factor::{
    login_policy, manage_methods_challenge_hash, new_method_id, new_recovery_codes,
    recovery_code_hash, secret_context, AuthenticatorConfiguration, AuthenticatorSecret,
    ChallengePurpose, LoginPolicy, SealedAuthenticator, TwoFactorChallenge, TwoFactorMethod,
    TwoFactorMethodKind, TwoFactorSecrets, TwoFactorTrust,
};
use crate::domain::user::LoginRefusal;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{
    Application, ApplicationId, Instant, Secret, SecretHash, TemplateId, Tenant, User, UserId,
};
use crate::ports::{
    ApplicationStore, Clock, Entropy, KeyVault, Mailer, RateLimiter, RefreshTokenStore,
    SigningKeyStore, StoreError, TemplateStore, TenantStore, TwoFactorStore, UserStore,
};

use super::mail::{send_template, TemplatedEmail};
use super::passwordless::{complete_login, tenant_of, Completing, LoggedIn};
use super::tenancy::TenantScope;
use super::{FlowError, FlowResult};

/// A pending step's id and a trust id: as long as a link code (S1).
const STEP_ID: CodeGenerator = CodeGenerator::LINK_DEFAULT;
/// A code mailed for a second step: six digits, as FusionAuth sends.
const MAILED_CODE: CodeGenerator = CodeGenerator::ONE_TIME_DEFAULT;
/// Codes mailed per user and minute, across every instance (S8, S31).
const SENDS_PER_MINUTE: u32 = 5;
/// Saves of a user's secrets retried when another save came first.
const SAVE_ATTEMPTS: usize = 5;

/// Everything the two-factor flows touch.
pub trait TwoFactorFlowStore:
    TenantStore
    + ApplicationStore
    + UserStore
    + TemplateStore
    + TwoFactorStore
    + RateLimiter
    + SigningKeyStore
    + RefreshTokenStore
{
}

impl<T> TwoFactorFlowStore for T where
    T: TenantStore
        + ApplicationStore
        + UserStore
        + TemplateStore
        + TwoFactorStore
        + RateLimiter
        + SigningKeyStore
        + RefreshTokenStore
        + ?Sized
{
}

pub struct TwoFactorPorts<'a, S: ?Sized> {
    pub store: &'a S,
    pub vault: &'a dyn KeyVault,
    pub mailer: &'a dyn Mailer,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
}

/// A login's second step, waiting: its id (known only now) and the methods it may use.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTwoFactor {
    pub id: Secret,
    pub methods: Vec<TwoFactorMethod>,
}

pub enum SecondStep {
    NotNeeded,
    Required(PendingTwoFactor),
}

/// A login whose first factor (the emailed code) is proven.
pub struct FirstFactor<'a> {
    pub tenant: &'a Tenant,
    pub application: &'a Application,
    pub user: &'a User,
    /// The hash of the `twoFactorTrustId` presented with the login.
    pub trust: Option<&'a SecretHash>,
    pub state: Option<serde_json::Map<String, serde_json::Value>>,
    pub authorization: Option<AuthorizationRequest>,
}

/// Whether a login must pass a second step, and if so the step, stored. The policy is the
/// application's, else the tenant's: `Disabled` asks nobody, `Enabled` users with a method,
/// `Required` everybody (one without a method enrols during the step). A live trust of this
/// user, that the application's trust policy accepts, skips it.
pub async fn second_step<S: TwoFactorStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    first: FirstFactor<'_>,
) -> FlowResult<SecondStep> {
    let FirstFactor {
        tenant,
        application,
        user,
        trust,
        state,
        authorization,
    } = first;
    let methods = &user.two_factor.methods;
    let needed = match login_policy(
        &tenant.multi_factor_configuration,
        &application.multi_factor_configuration,
    ) {
        LoginPolicy::Disabled => false,
        LoginPolicy::Enabled => !methods.is_empty(),
        LoginPolicy::Required => true,
    };
    if !needed {
        return Ok(SecondStep::NotNeeded);
    }
    let now = clock.now();
    if let (Some(hash), false) = (trust, methods.is_empty()) {
        if let Some(trust) = store.two_factor_trust(hash, now).await? {
            if trust.user_id == user.id
                && trust_still_stands(store, user, &trust).await?
                && trust.tenant_id == tenant.id
                && application
                    .multi_factor_configuration
                    .trust_policy
                    .accepts(&trust, application.id)
            {
                return Ok(SecondStep::NotNeeded);
            }
        }
    }
    let id = STEP_ID.generate(entropy)?;
    store
        .put_two_factor_challenge(&TwoFactorChallenge {
            id_hash: id.hash(),
            user_id: user.id,
            tenant_id: tenant.id,
            purpose: ChallengePurpose::Login {
                application_id: application.id,
                state,
                authorization: authorization.map(Box::new),
            },
            code_hash: None,
            code_expires_at: None,
            code_method_id: None,
            failed_attempts: 0,
            insert_instant: now,
            expires_at: now.plus_secs(
                tenant
                    .external_identifier_configuration
                    .two_factor_id_time_to_live_in_seconds,
            ),
        })
        .await?;
    Ok(SecondStep::Required(PendingTwoFactor {
        id,
        methods: methods.clone(),
    }))
}

/// What a presented code proved.
#[derive(Debug, Clone, PartialEq)]
enum Factor {
    /// An authenticator app's code, of this time step.
    Authenticator { method_id: String, step: u64 },
    /// The code last mailed for the pending step (or answered by an enrolment during it).
    Mailed { method_id: Option<String> },
    /// One of the user's recovery codes.
    Recovery(SecretHash),
}

impl Factor {
    fn method_id(&self) -> Option<&str> {
        match self {
            Factor::Authenticator { method_id, .. } => Some(method_id),
            Factor::Mailed { method_id } => method_id.as_deref(),
            Factor::Recovery(_) => None,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Factor::Authenticator { .. } => "authenticator",
            Factor::Mailed { .. } => "email",
            Factor::Recovery(_) => "recoveryCode",
        }
    }
}

/// Which factor `code` is, for `user`: an authenticator's code (of `only` when given), the
/// code mailed for `mailed`, or a recovery code. Nothing is spent here.
async fn factor_of<S: TwoFactorStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    user: &User,
    mailed: Option<&TwoFactorChallenge>,
    only: Option<&str>,
    code: &Secret,
    now: Instant,
) -> FlowResult<Option<Factor>> {
    if let Some(challenge) = mailed {
        let for_method = only.is_none_or(|id| challenge.code_method_id.as_deref() == Some(id));
        if for_method && challenge.mailed_code_matches(code, now) {
            return Ok(Some(Factor::Mailed {
                method_id: challenge.code_method_id.clone(),
            }));
        }
    }
    let Some(secrets) = store.two_factor_secrets(user.id).await? else {
        return Ok(None);
    };
    for method in &user.two_factor.methods {
        if method.method != TwoFactorMethodKind::Authenticator
            || only.is_some_and(|id| id != method.id)
        {
            continue;
        }
        let Some(sealed) = secrets.authenticator(&method.id) else {
            continue;
        };
        let secret = open_secret(vault, user.id, sealed).await?;
        if let Some(step) = secret.matching_step(code.expose(), now, sealed.last_used_step) {
            return Ok(Some(Factor::Authenticator {
                method_id: method.id.clone(),
                step,
            }));
        }
    }
    Ok(recovery_code_hash(code.expose())
        .filter(|hash| secrets.has_recovery_code(hash))
        .map(Factor::Recovery))
}

async fn open_secret(
    vault: &dyn KeyVault,
    user: UserId,
    sealed: &SealedAuthenticator,
) -> FlowResult<AuthenticatorSecret> {
    let bytes = vault
        .open(
            &sealed.sealed_secret,
            &secret_context(user, &sealed.method_id),
        )
        .await?;
    AuthenticatorSecret::from_bytes(bytes)
        .ok_or_else(|| FlowError::Internal("a stored authenticator secret is malformed".into()))
}

/// Changes a user's secrets by `change` (which answers false to give up), saved by version so
/// that of two concurrent changes built on one read only one saves; the other reads again.
async fn change_secrets<S, F>(store: &S, user: &User, mut change: F) -> FlowResult<bool>
where
    S: TwoFactorStore + ?Sized,
    F: FnMut(&mut TwoFactorSecrets) -> bool + Send,
{
    for _ in 0..SAVE_ATTEMPTS {
        let mut secrets = store
            .two_factor_secrets(user.id)
            .await?
            .unwrap_or_else(|| TwoFactorSecrets::empty(user.id, user.tenant_id));
        if !change(&mut secrets) {
            return Ok(false);
        }
        secrets.version += 1;
        if store.save_two_factor_secrets(&secrets).await? {
            return Ok(true);
        }
    }
    Err(StoreError::Unavailable("the two-factor secrets kept changing; try again".into()).into())
}

/// Uses a factor up: an authenticator's step (a code is refused when replayed within its
/// window) or a recovery code, once each (S5). False when a concurrent use came first.
async fn spend<S: TwoFactorStore + ?Sized>(
    store: &S,
    user: &User,
    factor: &Factor,
) -> FlowResult<bool> {
    match factor {
        Factor::Authenticator { method_id, step } => {
            change_secrets(store, user, |secrets| {
                match secrets
                    .authenticators
                    .iter_mut()
                    .find(|a| &a.method_id == method_id)
                {
                    Some(sealed) if sealed.last_used_step < *step => {
                        sealed.last_used_step = *step;
                        true
                    }
                    _ => false,
                }
            })
            .await
        }
        Factor::Recovery(hash) => {
            change_secrets(store, user, |secrets| {
                let before = secrets.recovery_code_hashes.len();
                secrets.recovery_code_hashes.retain(|h| !h.matches(hash));
                secrets.recovery_code_hashes.len() < before
            })
            .await
        }
        // The pending step it was mailed for is taken once; that is its single use.
        Factor::Mailed { .. } => Ok(true),
    }
}

/// An account sees at most this many wrong second-factor codes per window; beyond, every
/// second-factor code is refused until the window ends (S7, ASVS 2.2.1). Only callers past the
/// first factor (the emailed link or code) or holding the user's token or a key can fill it:
/// wrong one-time codes of the first factor, which anybody can cause, count per pending login
/// and per source instead, and never here (S33).
pub const MAX_ACCOUNT_FAILURES_PER_HOUR: u32 = 100;
const ACCOUNT_FAILURE_WINDOW_SECONDS: i64 = 3600;

fn account_failures_key(user: UserId) -> String {
    format!("two-factor-failed:user:{user}")
}

/// Whether a trust was granted after the user's trusts last ended (a reset of the methods, or
/// the API that ends them, S38): read only when a browser presents a trust.
async fn trust_still_stands<S: TwoFactorStore + ?Sized>(
    store: &S,
    user: &User,
    trust: &TwoFactorTrust,
) -> FlowResult<bool> {
    Ok(store
        .two_factor_secrets(user.id)
        .await?
        .is_none_or(|secrets| secrets.honours(trust)))
}

/// Counts a wrong second-factor code against the account (S7): a login step, enrolments and
/// removals share the limit.
async fn count_account_failure<S: RateLimiter + ?Sized>(
    store: &S,
    user: UserId,
    now: Instant,
) -> FlowResult<u32> {
    Ok(store
        .hit(
            &account_failures_key(user),
            ACCOUNT_FAILURE_WINDOW_SECONDS,
            now,
        )
        .await?)
}

async fn account_is_held<S: RateLimiter + ?Sized>(
    store: &S,
    user: UserId,
    now: Instant,
) -> FlowResult<bool> {
    Ok(store
        .count(
            &account_failures_key(user),
            ACCOUNT_FAILURE_WINDOW_SECONDS,
            now,
        )
        .await?
        >= MAX_ACCOUNT_FAILURES_PER_HOUR)
}

// ---- Enrolment ----

/// `POST /api/user/two-factor/{userId}`, typed.
pub struct EnableRequest {
    pub method: TwoFactorMethodKind,
    pub code: Secret,
    /// The authenticator's secret (from `GET /api/two-factor/secret`).
    pub secret: Option<AuthenticatorSecret>,
    /// The email method's address, where `/api/two-factor/send` mailed the code.
    pub email: Option<String>,
    /// A login's pending step that asks this user to enrol (`loginPolicy: Required`).
    pub two_factor_id: Option<Secret>,
}

pub struct Enabled {
    pub method: TwoFactorMethod,
    /// Ten codes, for the user's first method only; shown now and never again.
    pub recovery_codes: Vec<Secret>,
    /// With `two_factor_id`: the code that finishes that login's step.
    pub code: Option<Secret>,
}

fn invalid(field: &str, message: &str) -> FlowError {
    ValidationErrors::field(FieldError::invalid(field, message)).into()
}

/// Adds a method to a user, once its first code proves the user holds it: an authenticator's
/// current code (a wrong one is 421, as FusionAuth answers), or the code `send_code` mailed to
/// the address (a wrong one is `[invalid]code`).
pub async fn enable<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    scope: &TenantScope,
    user_id: UserId,
    request: EnableRequest,
) -> FlowResult<Enabled> {
    let store = ports.store;
    let mut user = super::users::user(store, scope, user_id).await?;
    let tenant = tenant_of(store, user.tenant_id).await?;
    if !tenant.multi_factor_configuration.allows(request.method) {
        return Err(invalid(
            "method",
            "This two-factor method is not enabled for the tenant.",
        ));
    }
    let now = ports.clock.now();
    if account_is_held(store, user.id, now).await? {
        return Err(FlowError::TwoFactorCodeWrong);
    }
    let pending = match &request.two_factor_id {
        None => None,
        Some(id) => Some(
            store
                .two_factor_challenge(&id.hash(), now)
                .await?
                .filter(|c| {
                    c.user_id == user.id && matches!(c.purpose, ChallengePurpose::Login { .. })
                })
                .ok_or_else(|| invalid("twoFactorId", "The twoFactorId is not valid."))?,
        ),
    };
    let method_id = new_method_id(ports.entropy, &user.two_factor)?;
    let mut method = TwoFactorMethod {
        id: method_id.clone(),
        method: request.method,
        authenticator: None,
        email: None,
        last_used: false,
    };
    let mut sealed = None;
    match request.method {
        TwoFactorMethodKind::Authenticator => {
            let Some(secret) = request.secret else {
                return Err(ValidationErrors::field(FieldError::blank("secret")).into());
            };
            if user
                .two_factor
                .methods
                .iter()
                .any(|m| m.method == TwoFactorMethodKind::Authenticator)
            {
                return Err(ValidationErrors::field(FieldError::new(
                    "duplicate",
                    "method",
                    "The user already has an authenticator app enabled.",
                ))
                .into());
            }
            let Some(step) = secret.matching_step(request.code.expose(), now, 0) else {
                count_account_failure(store, user.id, now).await?;
                return Err(FlowError::TwoFactorCodeWrong);
            };
            let sealed_secret = ports
                .vault
                .seal(secret.bytes(), &secret_context(user.id, &method_id))
                .await?;
            sealed = Some(SealedAuthenticator {
                method_id: method_id.clone(),
                sealed_secret,
                last_used_step: step,
            });
            method.authenticator = Some(AuthenticatorConfiguration::default());
        }
        TwoFactorMethodKind::Email => {
            let Some(email) = request.email.map(|e| e.trim().to_lowercase()) else {
                return Err(ValidationErrors::field(FieldError::blank("email")).into());
            };
            if user
                .two_factor
                .methods
                .iter()
                .any(|m| m.email.as_deref() == Some(email.as_str()))
            {
                return Err(ValidationErrors::field(FieldError::new(
                    "duplicate",
                    "email",
                    "The user already has this address as a two-factor method.",
                ))
                .into());
            }
            take_manage_code(store, &user, &request.code, Some(&email), None, now)
                .await?
                .then_some(())
                .ok_or_else(|| invalid("code", "The code is not valid."))?;
            method.email = Some(email);
        }
    }
    let first = user.two_factor.is_empty();
    let recovery_codes = if first {
        new_recovery_codes(ports.entropy)?
    } else {
        Vec::new()
    };
    let hashes: Vec<SecretHash> = recovery_codes
        .iter()
        .filter_map(|code| recovery_code_hash(code.expose()))
        .collect();
    change_secrets(store, &user, |secrets| {
        if let Some(sealed) = &sealed {
            secrets.authenticators.push(sealed.clone());
        }
        if first {
            secrets.recovery_code_hashes = hashes.clone();
        }
        true
    })
    .await?;
    user.two_factor.methods.push(method.clone());
    user.last_update_instant = now;
    save_user(store, &user).await?;
    info!(user_id = %user.id, method = method.method.as_str(), method_id = %method.id, "user.two-factor.method.add");
    let code = match pending {
        None => None,
        Some(mut pending) => {
            let code = STEP_ID.generate(ports.entropy)?;
            pending.code_hash = Some(code.hash());
            pending.code_expires_at = Some(pending.expires_at);
            pending.code_method_id = Some(method.id.clone());
            store.put_two_factor_challenge(&pending).await?;
            Some(code)
        }
    };
    Ok(Enabled {
        method,
        recovery_codes,
        code,
    })
}

async fn save_user<S: UserStore + ?Sized>(store: &S, user: &User) -> FlowResult<()> {
    match store.update_user(user).await {
        Ok(()) => Ok(()),
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// Takes the code mailed by `send_code` when it is right (for `email`, or for the method
/// `method_id`); a wrong one is counted (S7).
async fn take_manage_code<S: TwoFactorStore + RateLimiter + ?Sized>(
    store: &S,
    user: &User,
    code: &Secret,
    email: Option<&str>,
    method_id: Option<&str>,
    now: Instant,
) -> FlowResult<bool> {
    let hash = manage_methods_challenge_hash(user.id);
    let Some(pending) = store.two_factor_challenge(&hash, now).await? else {
        count_account_failure(store, user.id, now).await?;
        return Ok(false);
    };
    let for_this = match &pending.purpose {
        ChallengePurpose::ManageMethods { email: sent_to } => {
            email.is_none_or(|e| sent_to.as_deref() == Some(e))
                && method_id.is_none_or(|id| pending.code_method_id.as_deref() == Some(id))
        }
        ChallengePurpose::Login { .. } => false,
    };
    if !(for_this && pending.mailed_code_matches(code, now)) {
        store.fail_two_factor_challenge(&hash, now).await?;
        count_account_failure(store, user.id, now).await?;
        return Ok(false);
    }
    Ok(store.take_two_factor_challenge(&hash, now).await?.is_some())
}

/// Removes a method with a code of that method or a recovery code; a recovery code removes
/// every method (FusionAuth's rule: it is for a user who lost them). The last method takes the
/// recovery codes with it. A wrong code is 421.
pub async fn disable<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    scope: &TenantScope,
    user_id: UserId,
    method_id: &str,
    code: &Secret,
) -> FlowResult<()> {
    let store = ports.store;
    let mut user = super::users::user(store, scope, user_id).await?;
    let Some(method) = user.two_factor.method(method_id).cloned() else {
        return Err(invalid("methodId", "The user has no method with this id."));
    };
    let now = ports.clock.now();
    if account_is_held(store, user.id, now).await? {
        return Err(FlowError::TwoFactorCodeWrong);
    }
    let factor = if method.method == TwoFactorMethodKind::Email
        && take_manage_code(store, &user, code, None, Some(method_id), now).await?
    {
        Factor::Mailed {
            method_id: Some(method.id.clone()),
        }
    } else {
        match factor_of(store, ports.vault, &user, None, Some(method_id), code, now).await? {
            Some(factor) if spend(store, &user, &factor).await? => factor,
            _ => {
                count_account_failure(store, user.id, now).await?;
                return Err(FlowError::TwoFactorCodeWrong);
            }
        }
    };
    let removed: Vec<String> = match factor {
        Factor::Recovery(_) => user
            .two_factor
            .methods
            .iter()
            .map(|m| m.id.clone())
            .collect(),
        _ => vec![method.id.clone()],
    };
    user.two_factor.methods.retain(|m| !removed.contains(&m.id));
    let none_left = user.two_factor.is_empty();
    change_secrets(store, &user, |secrets| {
        secrets
            .authenticators
            .retain(|a| !removed.contains(&a.method_id));
        if none_left {
            secrets.recovery_code_hashes.clear();
            // A reset: the browsers trusted under the old methods skip nothing under new ones.
            secrets.trusts_ended_instant = Some(now);
        }
        true
    })
    .await?;
    user.last_update_instant = now;
    save_user(store, &user).await?;
    for id in &removed {
        info!(user_id = %user.id, method_id = %id, used = factor.describe(), "user.two-factor.method.remove");
    }
    Ok(())
}

/// `DELETE /api/user/two-factor/trust/{userId}`: ends every browser the user trusted, so each
/// asks for the second factor again (S38); the trust records expire by themselves.
pub async fn end_trusts<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    scope: &TenantScope,
    user_id: UserId,
) -> FlowResult<()> {
    let store = ports.store;
    let user = super::users::user(store, scope, user_id).await?;
    let now = ports.clock.now();
    change_secrets(store, &user, |secrets| {
        secrets.trusts_ended_instant = Some(now);
        true
    })
    .await?;
    info!(user_id = %user.id, "user.two-factor.trusts.end");
    Ok(())
}

/// What `POST /api/two-factor/send` mails a code for.
pub enum ManageCode {
    /// Enabling the email method at this address.
    Enable { email: String },
    /// Disabling this email method.
    Disable { method_id: String },
}

/// Mails a code for enabling or disabling an email method; a new one replaces the last.
pub async fn send_manage_code<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    scope: &TenantScope,
    user_id: UserId,
    purpose: ManageCode,
) -> FlowResult<()> {
    let store = ports.store;
    let user = super::users::user(store, scope, user_id).await?;
    let tenant = tenant_of(store, user.tenant_id).await?;
    let (email, method_id) = match purpose {
        ManageCode::Enable { email } => {
            if !tenant
                .multi_factor_configuration
                .allows(TwoFactorMethodKind::Email)
            {
                return Err(invalid(
                    "method",
                    "The email method is not enabled for the tenant.",
                ));
            }
            (email.trim().to_lowercase(), None)
        }
        ManageCode::Disable { method_id } => match user.two_factor.method(&method_id) {
            Some(TwoFactorMethod {
                method: TwoFactorMethodKind::Email,
                email: Some(email),
                ..
            }) => (email.clone(), Some(method_id)),
            _ => {
                return Err(invalid(
                    "methodId",
                    "The user has no email method with this id.",
                ))
            }
        },
    };
    let template = tenant.multi_factor_configuration.email.template_id;
    let now = ports.clock.now();
    let ttl = code_ttl(&tenant);
    let code = MAILED_CODE.generate(ports.entropy)?;
    limit_sends(store, user.id, now).await?;
    store
        .put_two_factor_challenge(&TwoFactorChallenge {
            id_hash: manage_methods_challenge_hash(user.id),
            user_id: user.id,
            tenant_id: tenant.id,
            purpose: ChallengePurpose::ManageMethods {
                email: Some(email.clone()),
            },
            code_hash: Some(code.hash()),
            code_expires_at: Some(now.plus_secs(ttl)),
            code_method_id: method_id,
            failed_attempts: 0,
            insert_instant: now,
            expires_at: now.plus_secs(ttl),
        })
        .await?;
    mail_code(ports, &tenant, None, template, &user, &email, &code).await
}

fn code_ttl(tenant: &Tenant) -> i64 {
    tenant
        .external_identifier_configuration
        .two_factor_one_time_code_id_time_to_live_in_seconds
        .clamp(1, crate::domain::tenant::ONE_TIME_CODE_MAX_TTL_SECONDS)
}

async fn limit_sends<S: RateLimiter + ?Sized>(
    store: &S,
    user: UserId,
    now: Instant,
) -> FlowResult<()> {
    let hits = store
        .hit(&format!("two-factor-send:user:{user}"), 60, now)
        .await?;
    if hits > SENDS_PER_MINUTE {
        warn!(user_id = %user, hits, "two-factor.send.limited");
        return Err(FlowError::RateLimited);
    }
    Ok(())
}

async fn mail_code<S: TemplateStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    tenant: &Tenant,
    application: Option<&Application>,
    template: Option<TemplateId>,
    user: &User,
    to: &str,
    code: &Secret,
) -> FlowResult<()> {
    let Some(template_id) = template else {
        return Err(ValidationErrors::field(FieldError::missing(
            "tenant.multiFactorConfiguration.email.templateId",
        ))
        .into());
    };
    let context = json!({
        "code": code.expose(),
        "user": user,
        "tenant": tenant,
        "application": application,
    });
    let sent = send_template(
        ports.store,
        ports.mailer,
        &TemplatedEmail {
            tenant,
            template_id,
            to_email: to.to_owned(),
            user,
            context: &context,
            field: "templateId",
        },
        ports.clock.now(),
    )
    .await?;
    info!(user_id = %user.id, message_id = %sent.message_id, "two-factor.code.sent");
    Ok(())
}

/// `POST /api/two-factor/send/{twoFactorId}`: mails a code for a login's pending step to one
/// of the user's email methods, with the application's template, else the tenant's.
pub async fn send_login_code<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    two_factor_id: &Secret,
    method_id: &str,
) -> FlowResult<()> {
    let store = ports.store;
    let now = ports.clock.now();
    let Some(mut pending) = store
        .two_factor_challenge(&two_factor_id.hash(), now)
        .await?
    else {
        return Err(FlowError::NotFound);
    };
    let Some(application_id) = pending.application_id() else {
        return Err(FlowError::NotFound);
    };
    let user = store
        .user(pending.user_id)
        .await?
        .ok_or(FlowError::NotFound)?;
    let Some(TwoFactorMethod {
        method: TwoFactorMethodKind::Email,
        email: Some(email),
        ..
    }) = user.two_factor.method(method_id).cloned()
    else {
        return Err(invalid(
            "methodId",
            "The user has no email method with this id.",
        ));
    };
    let tenant = tenant_of(store, pending.tenant_id).await?;
    let application = store.application(application_id).await?;
    let template = application
        .as_ref()
        .and_then(|a| a.multi_factor_configuration.email.template_id)
        .or(tenant.multi_factor_configuration.email.template_id);
    limit_sends(store, user.id, now).await?;
    let code = MAILED_CODE.generate(ports.entropy)?;
    pending.code_hash = Some(code.hash());
    pending.code_expires_at = Some(now.plus_secs(code_ttl(&tenant)).min(pending.expires_at));
    pending.code_method_id = Some(method_id.to_owned());
    store.put_two_factor_challenge(&pending).await?;
    mail_code(
        ports,
        &tenant,
        application.as_ref(),
        template,
        &user,
        &email,
        &code,
    )
    .await
}

// ---- The second step of a login ----

/// `POST /api/two-factor/login`, typed.
pub struct SecondFactorLogin {
    pub two_factor_id: Secret,
    pub code: Secret,
    pub trust_computer: bool,
    pub application_id: Option<ApplicationId>,
    pub ip_address: Option<String>,
    pub no_jwt: bool,
}

pub struct SecondFactorDone {
    pub logged_in: LoggedIn,
    /// A new `twoFactorTrustId`, when the caller asked to trust the browser.
    pub trust: Option<Secret>,
    pub trust_expires_at: Option<Instant>,
    /// The hosted pages' authorization request the login started with.
    pub authorization: Option<AuthorizationRequest>,
}

/// Finishes a login's second step: the code is checked (a wrong one counts, 421), the step is
/// taken once, the factor spent, and the login answers what the first step would have.
pub async fn login<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    request: SecondFactorLogin,
) -> FlowResult<SecondFactorDone> {
    let store = ports.store;
    let now = ports.clock.now();
    let hash = request.two_factor_id.hash();
    let Some(pending) = store.two_factor_challenge(&hash, now).await? else {
        info!(ip_address = ?request.ip_address, "user.login.failed: unknown two-factor step");
        return Err(FlowError::NotFound);
    };
    let Some(application_id) = pending.application_id() else {
        return Err(FlowError::NotFound);
    };
    if request
        .application_id
        .is_some_and(|id| id != application_id)
    {
        return Err(FlowError::NotFound);
    }
    let mut user = store
        .user(pending.user_id)
        .await?
        .filter(|u| u.tenant_id == pending.tenant_id)
        .ok_or(FlowError::NotFound)?;
    if account_is_held(store, user.id, now).await? {
        warn!(user_id = %user.id, "user.login.failed: the account's failed-attempt limit holds");
        return Err(FlowError::TwoFactorCodeWrong);
    }
    let factor = factor_of(
        store,
        ports.vault,
        &user,
        Some(&pending),
        None,
        &request.code,
        now,
    )
    .await?;
    let Some(factor) = factor else {
        store.fail_two_factor_challenge(&hash, now).await?;
        let failures = count_account_failure(store, user.id, now).await?;
        warn!(user_id = %user.id, failures, ip_address = ?request.ip_address, "user.login.failed: wrong two-factor code");
        return Err(FlowError::TwoFactorCodeWrong);
    };
    let Some(pending) = store.take_two_factor_challenge(&hash, now).await? else {
        return Err(FlowError::NotFound);
    };
    if !spend(store, &user, &factor).await? {
        warn!(user_id = %user.id, used = factor.describe(), "user.login.failed: two-factor code used already");
        return Err(FlowError::TwoFactorCodeWrong);
    }
    match user.login_refusal(now) {
        Some(LoginRefusal::Inactive) => return Err(FlowError::UserLocked),
        Some(LoginRefusal::Expired) => return Err(FlowError::UserExpired),
        None => {}
    }
    let tenant = tenant_of(store, pending.tenant_id).await?;
    let application = store
        .application(application_id)
        .await?
        .filter(|a| a.active && a.tenant_id == tenant.id)
        .ok_or(FlowError::NotFound)?;
    if let Some(id) = factor.method_id() {
        if user.two_factor.method(id).is_some_and(|m| !m.last_used) {
            user.two_factor.mark_used(id);
            // Which method was used last is a convenience: a concurrent change wins over it.
            if let Err(e) = store.update_user(&user).await {
                warn!(user_id = %user.id, error = %e, "two-factor.last-used.not-saved");
            }
        }
    }
    let (state, authorization) = match pending.purpose {
        ChallengePurpose::Login {
            state,
            authorization,
            ..
        } => (state, authorization.map(|a| *a)),
        ChallengePurpose::ManageMethods { .. } => (None, None),
    };
    let logged_in = complete_login(
        store,
        ports.vault,
        ports.entropy,
        Completing {
            tenant: &tenant,
            application: &application,
            user,
            no_jwt: request.no_jwt,
            state,
            now,
        },
    )
    .await?;
    let (mut trust, mut trust_expires_at) = (None, None);
    if request.trust_computer {
        let id = STEP_ID.generate(ports.entropy)?;
        let expires_at = now.plus_secs(
            tenant
                .external_identifier_configuration
                .two_factor_trust_id_time_to_live_in_seconds,
        );
        store
            .insert_two_factor_trust(&TwoFactorTrust {
                id_hash: id.hash(),
                user_id: logged_in.user.id,
                tenant_id: tenant.id,
                application_id: application.id,
                start_instant: now,
                expires_at,
            })
            .await?;
        trust = Some(id);
        trust_expires_at = Some(expires_at);
    }
    info!(
        user_id = %logged_in.user.id, tenant_id = %tenant.id, application_id = %application.id,
        ip_address = ?request.ip_address, authentication_type = "PASSWORDLESS",
        two_factor = factor.describe(), trusted = trust.is_some(), "user.login.success"
    );
    Ok(SecondFactorDone {
        logged_in,
        trust,
        trust_expires_at,
        authorization,
    })
}

/// A login's pending step by its id, with its user: what the hosted page shows again after a
/// wrong code, or the enrolment it asks for.
pub async fn pending_step<S: TwoFactorStore + UserStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    two_factor_id: &Secret,
) -> FlowResult<Option<(TwoFactorChallenge, User)>> {
    let Some(pending) = store
        .two_factor_challenge(&two_factor_id.hash(), clock.now())
        .await?
        .filter(|p| p.application_id().is_some())
    else {
        return Ok(None);
    };
    let Some(user) = store
        .user(pending.user_id)
        .await?
        .filter(|u| u.tenant_id == pending.tenant_id)
    else {
        return Ok(None);
    };
    Ok(Some((pending, user)))
}

// ---- Status and recovery codes ----

/// `GET /api/two-factor/status/{twoFactorTrustId}`: whether a login of the user would be asked
/// for a second factor. `None`: it would (242); `Some(trust)`: it would not, by this trust
/// (or with no trust, because the user has nothing to ask for).
pub async fn status<S: TwoFactorFlowStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    scope: &TenantScope,
    user_id: UserId,
    application_id: Option<ApplicationId>,
    trust_id: Option<&Secret>,
) -> FlowResult<Option<Option<TwoFactorTrust>>> {
    let user = super::users::user(store, scope, user_id).await?;
    let tenant = tenant_of(store, user.tenant_id).await?;
    let application = match application_id {
        Some(id) => Some(
            store
                .application(id)
                .await?
                .filter(|a| a.tenant_id == tenant.id)
                .ok_or(FlowError::NotFound)?,
        ),
        None => None,
    };
    let app_config = application
        .as_ref()
        .map(|a| a.multi_factor_configuration.clone())
        .unwrap_or_default();
    let needed = match login_policy(&tenant.multi_factor_configuration, &app_config) {
        LoginPolicy::Disabled => false,
        LoginPolicy::Enabled => !user.two_factor.is_empty(),
        LoginPolicy::Required => true,
    };
    if !needed {
        return Ok(Some(None));
    }
    let now = clock.now();
    let Some(trust_id) = trust_id else {
        return Ok(None);
    };
    let trust = store
        .two_factor_trust(&trust_id.hash(), now)
        .await?
        .filter(|t| t.user_id == user.id && !user.two_factor.is_empty())
        .filter(|t| {
            application
                .as_ref()
                .is_none_or(|a| a.multi_factor_configuration.trust_policy.accepts(t, a.id))
        });
    let trust = match trust {
        Some(trust) if trust_still_stands(store, &user, &trust).await? => Some(trust),
        _ => None,
    };
    Ok(trust.map(Some))
}

/// `POST /api/user/two-factor/recovery-code/{userId}`: ten new recovery codes replace the old
/// ones, for a user with two-factor enabled.
pub async fn regenerate_recovery_codes<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    scope: &TenantScope,
    user_id: UserId,
) -> FlowResult<Vec<Secret>> {
    let store = ports.store;
    let user = super::users::user(store, scope, user_id).await?;
    if user.two_factor.is_empty() {
        return Err(FlowError::NotFound);
    }
    let codes = new_recovery_codes(ports.entropy)?;
    let hashes: Vec<SecretHash> = codes
        .iter()
        .filter_map(|code| recovery_code_hash(code.expose()))
        .collect();
    change_secrets(store, &user, |secrets| {
        secrets.recovery_code_hashes = hashes.clone();
        true
    })
    .await?;
    info!(user_id = %user.id, "user.two-factor.recovery-codes.regenerated");
    Ok(codes)
}

/// `GET /api/user/two-factor/recovery-code/{userId}`: how many unused recovery codes the user
/// has. The codes themselves are stored hashed (S2) and cannot be shown again.
pub async fn remaining_recovery_codes<S: TwoFactorFlowStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    user_id: UserId,
) -> FlowResult<usize> {
    let user = super::users::user(store, scope, user_id).await?;
    if user.two_factor.is_empty() {
        return Err(FlowError::NotFound);
    }
    Ok(store
        .two_factor_secrets(user.id)
        .await?
        .map_or(0, |s| s.recovery_code_hashes.len()))
}

/// The issuer an authenticator app shows beside the code: the tenant's.
pub async fn authenticator_issuer<S: TenantStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
) -> FlowResult<String> {
    let tenant_id = match scope.resolve(store, None).await {
        Ok(id) => id,
        Err(_) => crate::domain::tenant::DEFAULT_TENANT_ID,
    };
    Ok(store
        .tenant(tenant_id)
        .await?
        .map(|t| t.name)
        .unwrap_or_else(|| "Passwordless".into()))
}
