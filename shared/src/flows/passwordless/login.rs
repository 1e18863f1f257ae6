//! Exchanging a code for tokens: the checks of the code and its user, the tokens, and what a
//! finished login records.

use tracing::{info, instrument, warn};

use crate::domain::ids::ApplicationId;
use crate::domain::oauth::AuthorizationRequest;
use crate::domain::user::LoginRefusal;
use crate::domain::{Application, Instant, PasswordlessCode, SecretHash, TenantId, User};
use crate::ports::{
    ApplicationStore, Clock, CodeStore, Consumed, Entropy, KeyVault, LoginFinish, Proof,
    RateLimiter, RefreshTokenStore, SigningKeyStore, TenantStore, TwoFactorStore,
};

use crate::flows::tenancy::TenantScope;
use crate::flows::tokens::{complete_login, Completing, LoggedIn};
use crate::flows::{FlowError, FlowResult};

use super::limits::{count_source_failure, source_is_held};
use super::{passwordless_application, tenant_of};

/// How a login proves the user read the email, besides naming the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The link alone (the API's `code`).
    Link,
    /// The short one-time code, the API's `oneTimeCode`: never takes a code bound to a browser
    /// (S14).
    OneTimeCode(SecretHash),
    /// The short one-time code typed on the hosted page in the browser that asked: the typed
    /// code's hash and the browser's binding's.
    BoundOneTimeCode {
        typed: SecretHash,
        binding: SecretHash,
    },
    /// The link opened in the browser that asked on the hosted page: its binding's hash.
    BoundBrowser(SecretHash),
}

impl Presented {
    fn proof(&self) -> Proof<'_> {
        match self {
            Presented::Link => Proof::Link,
            Presented::OneTimeCode(hash) => Proof::OneTimeCode(hash),
            Presented::BoundOneTimeCode { typed, binding } => {
                Proof::BoundOneTimeCode { typed, binding }
            }
            Presented::BoundBrowser(hash) => Proof::BoundBrowser(hash),
        }
    }
}

pub struct LoginRequest {
    /// The hash of the code: the API hashes the code it was given; the hosted page's short-code
    /// form uses the hash the asking browser holds.
    pub code_hash: SecretHash,
    pub presented: Presented,
    pub application_id: Option<ApplicationId>,
    pub ip_address: Option<String>,
    /// The platform-vouched address of an anonymous caller (S27), whose wrong one-time codes
    /// are counted and held back (S33); `None` for a key holder, who limits its own callers.
    pub source_address: Option<String>,
    pub no_jwt: bool,
    /// The hash of the `twoFactorTrustId` the caller presented (body or `fusionauth.trust`).
    pub two_factor_trust: Option<SecretHash>,
    /// The hosted pages' authorization request, finished after a second step if one is asked.
    pub authorization: Option<AuthorizationRequest>,
}

/// What a login with a proven code comes to.
pub enum LoginOutcome {
    LoggedIn(Box<LoggedIn>),
    /// The user's second factor is asked for first (242).
    TwoFactor(crate::flows::two_factor::PendingTwoFactor),
}

/// Exchanges a code for tokens. Unknown, expired, used, superseded and mismatched codes all
/// end in `NotFound` (S10); the code is consumed exactly once (S5).
#[instrument(skip_all, fields(application_id = ?request.application_id))]
pub async fn login<S>(
    store: &S,
    vault: &dyn KeyVault,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    scope: &TenantScope,
    request: LoginRequest,
) -> FlowResult<LoginOutcome>
where
    S: TenantStore
        + ApplicationStore
        + CodeStore
        + SigningKeyStore
        + RefreshTokenStore
        + RateLimiter
        + TwoFactorStore
        + ?Sized,
{
    // The application a login names must be one a login may finish in (M2), checked before the
    // code is touched.
    let named_application = match request.application_id {
        Some(id) => Some(passwordless_application(store, scope, id).await?),
        None => None,
    };
    let now = clock.now();
    // Only a code of the tenant in scope is consumed: a mismatch leaves it usable (X7).
    let tenant_in_scope = named_application
        .as_ref()
        .map(|app| app.tenant_id)
        .or(scope.explicit);
    let mut code = consume(store, &request, tenant_in_scope, now).await?;
    let application = match named_application {
        Some(app) => app,
        None => own_application(store, &code).await?,
    };
    // A code logs in only its own user, into its own tenant (S6, S22).
    if application.tenant_id != code.tenant_id || !scope.allows(code.tenant_id) {
        return Err(FlowError::NotFound);
    }
    let tenant = tenant_of(store, code.tenant_id).await?;
    // An emailed code proves the address only where the tenant lets a login say so.
    code.emailed &= tenant
        .email_configuration
        .implicit_email_verification_allowed;
    let user = finish_user(store, &code, application.id, now).await?;
    let second = crate::flows::two_factor::second_step(
        store,
        clock,
        entropy,
        crate::flows::two_factor::FirstFactor {
            tenant: &tenant,
            application: &application,
            user: &user,
            trust: request.two_factor_trust.as_ref(),
            state: code.state.clone(),
            authorization: request.authorization,
        },
    )
    .await?;
    if let crate::flows::two_factor::SecondStep::Required(pending) = second {
        info!(user_id = %user.id, tenant_id = %tenant.id, application_id = %application.id, "user.login.two-factor.required");
        return Ok(LoginOutcome::TwoFactor(pending));
    }
    let done = complete_login(
        store,
        vault,
        entropy,
        Completing {
            tenant: &tenant,
            application: &application,
            user,
            no_jwt: request.no_jwt,
            state: code.state,
            now,
        },
    )
    .await?;
    info!(
        user_id = %done.user.id, tenant_id = %tenant.id, application_id = %application.id,
        ip_address = ?request.ip_address, authentication_type = "PASSWORDLESS", "user.login.success"
    );
    Ok(LoginOutcome::LoggedIn(Box::new(done)))
}

/// Takes the presented code, once: a source held for wrong short codes is refused first (S33),
/// and a wrong short code is counted against its source before the answer (S7).
async fn consume<S: CodeStore + RateLimiter + ?Sized>(
    store: &S,
    request: &LoginRequest,
    tenant_in_scope: Option<TenantId>,
    now: Instant,
) -> FlowResult<PasswordlessCode> {
    let source = request.source_address.as_deref();
    if matches!(
        request.presented,
        Presented::OneTimeCode(_) | Presented::BoundOneTimeCode { .. }
    ) && source_is_held(store, source, now).await?
    {
        return Err(FlowError::RateLimited);
    }
    let consumed = store
        .consume_code(
            &request.code_hash,
            request.presented.proof(),
            tenant_in_scope,
            now,
        )
        .await?;
    match consumed {
        Consumed::Code(code) => Ok(*code),
        Consumed::WrongOneTimeCode { user } => {
            warn!(user_id = %user, ip_address = ?request.ip_address, "user.login.failed: wrong one-time code");
            Err(match request.presented {
                Presented::Link => FlowError::WrongOneTimeCode { missing: true },
                Presented::OneTimeCode(_) | Presented::BoundOneTimeCode { .. } => {
                    count_source_failure(store, source, now).await?;
                    FlowError::WrongOneTimeCode { missing: false }
                }
                Presented::BoundBrowser(_) => FlowError::NotFound,
            })
        }
        Consumed::Nothing => {
            info!(ip_address = ?request.ip_address, "user.login.failed: unknown code");
            Err(FlowError::NotFound)
        }
    }
}

/// The application a code was made for, when the login names none: it must still take
/// passwordless logins.
async fn own_application<S: ApplicationStore + ?Sized>(
    store: &S,
    code: &PasswordlessCode,
) -> FlowResult<Application> {
    let own = store
        .application(code.application_id)
        .await?
        .ok_or(FlowError::NotFound)?;
    if !own.active || !own.passwordless_configuration.enabled {
        info!(application_id = %own.id, "user.login.failed: the application no longer takes passwordless logins");
        return Err(FlowError::NotFound);
    }
    Ok(own)
}

/// The code's user, with the login recorded: refused when locked or expired, nothing when a
/// newer code superseded this one.
async fn finish_user<S: CodeStore + ?Sized>(
    store: &S,
    code: &PasswordlessCode,
    application: ApplicationId,
    now: Instant,
) -> FlowResult<User> {
    match store
        .finish_login(code.user_id, code, application, now)
        .await?
    {
        LoginFinish::Completed(user) => Ok(user),
        LoginFinish::Refused(user) => {
            info!(user_id = %user.id, "user.login.failed: account refused");
            Err(match user.login_refusal(now) {
                Some(LoginRefusal::Expired) => FlowError::UserExpired,
                _ => FlowError::UserLocked,
            })
        }
        LoginFinish::Superseded => {
            info!(user_id = %code.user_id, "user.login.failed: superseded code");
            Err(FlowError::NotFound)
        }
    }
}
