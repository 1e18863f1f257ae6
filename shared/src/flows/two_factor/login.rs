//! The pending second step of a login: begun after the first factor (242), a code mailed on
//! request, finished with a code of a method or a recovery code, and the trust a browser may
//! keep.

use tracing::{info, warn};

use crate::domain::oauth::AuthorizationRequest;
use crate::domain::two_factor::{
    login_policy, ChallengePurpose, LoginPolicy, TwoFactorChallenge, TwoFactorMethod,
    TwoFactorMethodKind, TwoFactorTrust,
};
use crate::domain::user::LoginRefusal;
use crate::domain::{
    Application, ApplicationId, Instant, Secret, SecretHash, Tenant, User, UserId,
};
use crate::ports::{Clock, Entropy, TwoFactorStore, UserStore};

use crate::flows::tenancy::tenant_of;
use crate::flows::tenancy::TenantScope;
use crate::flows::tokens::{complete_login, Completing, LoggedIn};
use crate::flows::{FlowError, FlowResult};

use super::{
    account_is_held, code_ttl, count_account_failure, factor_of, invalid, limit_sends, mail_code,
    spend, trust_still_stands, TwoFactorFlowStore, TwoFactorPorts, MAILED_CODE, STEP_ID,
};

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

/// `POST /api/two-factor/send/{twoFactorId}`: mails a code for a login's pending step to one
/// of the user's email methods, with the application's template, else the tenant's.
pub(crate) async fn send_login_code<S: TwoFactorFlowStore + ?Sized>(
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
    let (pending, application_id, mut user) = step_and_user(store, &request, now).await?;
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
        mark_last_used(store, &mut user, id).await;
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
    let (trust, trust_expires_at) = match request.trust_computer {
        true => {
            let (id, expires_at) = trust_browser(ports, &tenant, &application, &logged_in).await?;
            (Some(id), Some(expires_at))
        }
        false => (None, None),
    };
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

/// The live pending step the request names, the application its login is for (which the
/// request may name too, but not another) and its user, of the step's tenant.
async fn step_and_user<S: TwoFactorFlowStore + ?Sized>(
    store: &S,
    request: &SecondFactorLogin,
    now: Instant,
) -> FlowResult<(TwoFactorChallenge, ApplicationId, User)> {
    let Some(pending) = store
        .two_factor_challenge(&request.two_factor_id.hash(), now)
        .await?
    else {
        info!(ip_address = ?request.ip_address, "user.login.failed: unknown two-factor step");
        return Err(FlowError::NotFound);
    };
    let application_id = pending
        .application_id()
        .filter(|id| request.application_id.is_none_or(|named| named == *id))
        .ok_or(FlowError::NotFound)?;
    let user = store
        .user(pending.user_id)
        .await?
        .filter(|u| u.tenant_id == pending.tenant_id)
        .ok_or(FlowError::NotFound)?;
    Ok((pending, application_id, user))
}

/// Records which method was used last; a convenience, so a concurrent change wins over it.
async fn mark_last_used<S: TwoFactorFlowStore + ?Sized>(store: &S, user: &mut User, id: &str) {
    if user.two_factor.method(id).is_some_and(|m| !m.last_used) {
        user.two_factor.mark_used(id);
        if let Err(e) = store.update_user(user).await {
            warn!(user_id = %user.id, error = %e, "two-factor.last-used.not-saved");
        }
    }
}

/// A trust for the browser that asked: its id (for the trust cookie) and when it ends, as long
/// as the tenant's `twoFactorTrustIdTimeToLiveInSeconds`.
async fn trust_browser<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    tenant: &Tenant,
    application: &Application,
    logged_in: &LoggedIn,
) -> FlowResult<(Secret, Instant)> {
    let now = ports.clock.now();
    let id = STEP_ID.generate(ports.entropy)?;
    let expires_at = now.plus_secs(
        tenant
            .external_identifier_configuration
            .two_factor_trust_id_time_to_live_in_seconds,
    );
    ports
        .store
        .insert_two_factor_trust(&TwoFactorTrust {
            id_hash: id.hash(),
            user_id: logged_in.user.id,
            tenant_id: tenant.id,
            application_id: application.id,
            start_instant: now,
            expires_at,
        })
        .await?;
    Ok((id, expires_at))
}

/// A login's pending step by its id, with its user: what the hosted page shows again after a
/// wrong code, or the enrolment it asks for.
pub(crate) async fn pending_step<S: TwoFactorStore + UserStore + ?Sized>(
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
    let user = crate::flows::users::user(store, scope, user_id).await?;
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
