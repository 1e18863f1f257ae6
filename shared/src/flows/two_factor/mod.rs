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
use crate::domain::two_factor::{
    recovery_code_hash, secret_context, AuthenticatorSecret, SealedAuthenticator,
    TwoFactorChallenge, TwoFactorMethodKind, TwoFactorSecrets, TwoFactorTrust,
};
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Application, Instant, Secret, SecretHash, TemplateId, Tenant, User, UserId};
use crate::ports::{
    ApplicationStore, Clock, Entropy, KeyVault, Mailer, RateLimiter, RefreshTokenStore,
    SigningKeyStore, StoreError, TemplateStore, TenantStore, TwoFactorStore, UserStore,
};

use super::mail::{send_template, TemplatedEmail};
use super::{FlowError, FlowResult};

mod login;
mod methods;

pub use login::PendingTwoFactor;
pub use login::{login, second_step, status};
pub(crate) use login::{pending_step, send_login_code};
pub use login::{FirstFactor, SecondFactorDone, SecondFactorLogin, SecondStep};
pub(crate) use methods::{
    authenticator_issuer, enable, end_trusts, regenerate_recovery_codes, remaining_recovery_codes,
    send_manage_code, EnableRequest, ManageCode,
};
pub use methods::{disable, Enabled};

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
pub(crate) const MAX_ACCOUNT_FAILURES_PER_HOUR: u32 = 100;

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

fn invalid(field: &str, message: &str) -> FlowError {
    ValidationErrors::field(FieldError::invalid(field, message)).into()
}

async fn save_user<S: UserStore + ?Sized>(store: &S, user: &User) -> FlowResult<()> {
    match store.update_user(user).await {
        Ok(()) => Ok(()),
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        Err(e) => Err(e.into()),
    }
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
