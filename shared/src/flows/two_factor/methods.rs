//! A user's methods: enabled with a first valid code, removed with a code of the method or a
//! recovery code, recovery codes made anew, trusted browsers ended.

use tracing::info;

use crate::domain::two_factor::{
    manage_methods_challenge_hash, new_method_id, new_recovery_codes, recovery_code_hash,
    secret_context, AuthenticatorConfiguration, AuthenticatorSecret, ChallengePurpose,
    SealedAuthenticator, TwoFactorChallenge, TwoFactorMethod, TwoFactorMethodKind,
};
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Instant, Secret, SecretHash, User, UserId};
use crate::ports::{RateLimiter, TenantStore, TwoFactorStore};

use crate::flows::tenancy::tenant_of;
use crate::flows::tenancy::TenantScope;
use crate::flows::{FlowError, FlowResult};

use super::{
    account_is_held, change_secrets, code_ttl, count_account_failure, factor_of, invalid,
    limit_sends, mail_code, save_user, spend, Factor, TwoFactorFlowStore, TwoFactorPorts,
    MAILED_CODE, STEP_ID,
};

// ---- Enrolment ----

/// `POST /api/user/two-factor/{userId}`, typed.
pub(crate) struct EnableRequest {
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

/// Adds a method to a user, once its first code proves the user holds it: an authenticator's
/// current code (a wrong one is 421, as FusionAuth answers), or the code `send_code` mailed to
/// the address (a wrong one is `[invalid]code`).
pub(crate) async fn enable<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    scope: &TenantScope,
    user_id: UserId,
    request: EnableRequest,
) -> FlowResult<Enabled> {
    let store = ports.store;
    let mut user = crate::flows::users::user(store, scope, user_id).await?;
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
            let secret = request
                .secret
                .ok_or_else(|| ValidationErrors::field(FieldError::blank("secret")))?;
            let proven =
                proven_authenticator(ports, &user, &method_id, &secret, &request.code).await?;
            sealed = Some(proven);
            method.authenticator = Some(AuthenticatorConfiguration::default());
        }
        TwoFactorMethodKind::Email => {
            let email = request
                .email
                .map(|e| e.trim().to_lowercase())
                .ok_or_else(|| ValidationErrors::field(FieldError::blank("email")))?;
            proven_address(store, &user, &email, &request.code, now).await?;
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
        Some(pending) => Some(finishing_code(ports, pending, &method).await?),
    };
    Ok(Enabled {
        method,
        recovery_codes,
        code,
    })
}

/// An authenticator's first code, proving the app holds the secret: the user's only
/// authenticator, sealed with the time step the code used (so that code cannot serve again).
async fn proven_authenticator<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    user: &User,
    method_id: &str,
    secret: &AuthenticatorSecret,
    code: &Secret,
) -> FlowResult<SealedAuthenticator> {
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
    let now = ports.clock.now();
    let Some(step) = secret.matching_step(code.expose(), now, 0) else {
        count_account_failure(ports.store, user.id, now).await?;
        return Err(FlowError::TwoFactorCodeWrong);
    };
    let sealed_secret = ports
        .vault
        .seal(secret.bytes(), &secret_context(user.id, method_id))
        .await?;
    Ok(SealedAuthenticator {
        method_id: method_id.to_owned(),
        sealed_secret,
        last_used_step: step,
    })
}

/// An address's code, mailed there by the send API, proving the person reads it; an address
/// may serve one method.
async fn proven_address<S: TwoFactorFlowStore + ?Sized>(
    store: &S,
    user: &User,
    email: &str,
    code: &Secret,
    now: Instant,
) -> FlowResult<()> {
    if user
        .two_factor
        .methods
        .iter()
        .any(|m| m.email.as_deref() == Some(email))
    {
        return Err(ValidationErrors::field(FieldError::new(
            "duplicate",
            "email",
            "The user already has this address as a two-factor method.",
        ))
        .into());
    }
    take_manage_code(store, user, code, Some(email), None, now)
        .await?
        .then_some(())
        .ok_or_else(|| invalid("code", "The code is not valid."))
}

/// The code that finishes the login waiting on `pending` with the method just enabled (a
/// required policy's first enrolment).
async fn finishing_code<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    mut pending: TwoFactorChallenge,
    method: &TwoFactorMethod,
) -> FlowResult<Secret> {
    let code = STEP_ID.generate(ports.entropy)?;
    pending.code_hash = Some(code.hash());
    pending.code_expires_at = Some(pending.expires_at);
    pending.code_method_id = Some(method.id.clone());
    ports.store.put_two_factor_challenge(&pending).await?;
    Ok(code)
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
    let mut user = crate::flows::users::user(store, scope, user_id).await?;
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
pub(crate) async fn end_trusts<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    scope: &TenantScope,
    user_id: UserId,
) -> FlowResult<()> {
    let store = ports.store;
    let user = crate::flows::users::user(store, scope, user_id).await?;
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
pub(crate) enum ManageCode {
    /// Enabling the email method at this address.
    Enable { email: String },
    /// Disabling this email method.
    Disable { method_id: String },
}

/// Mails a code for enabling or disabling an email method; a new one replaces the last.
pub(crate) async fn send_manage_code<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    scope: &TenantScope,
    user_id: UserId,
    purpose: ManageCode,
) -> FlowResult<()> {
    let store = ports.store;
    let user = crate::flows::users::user(store, scope, user_id).await?;
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

/// `POST /api/user/two-factor/recovery-code/{userId}`: ten new recovery codes replace the old
/// ones, for a user with two-factor enabled.
pub(crate) async fn regenerate_recovery_codes<S: TwoFactorFlowStore + ?Sized>(
    ports: &TwoFactorPorts<'_, S>,
    scope: &TenantScope,
    user_id: UserId,
) -> FlowResult<Vec<Secret>> {
    let store = ports.store;
    let user = crate::flows::users::user(store, scope, user_id).await?;
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
pub(crate) async fn remaining_recovery_codes<S: TwoFactorFlowStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    user_id: UserId,
) -> FlowResult<usize> {
    let user = crate::flows::users::user(store, scope, user_id).await?;
    if user.two_factor.is_empty() {
        return Err(FlowError::NotFound);
    }
    Ok(store
        .two_factor_secrets(user.id)
        .await?
        .map_or(0, |s| s.recovery_code_hashes.len()))
}

/// The issuer an authenticator app shows beside the code: the tenant's.
pub(crate) async fn authenticator_issuer<S: TenantStore + ?Sized>(
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
