//! Passwordless login: start (make a code), send (email it), login (exchange it for tokens).

use serde_json::{json, Map, Value};
use tracing::{info, instrument, warn};

use crate::domain::code::{LoginStrategy, PasswordlessCode};
use crate::domain::email::{render_email, OutgoingEmail};
use crate::domain::ids::{ApplicationId, RefreshTokenId};
use crate::domain::user::{LoginIdType, LoginRefusal};
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Application, Instant, Secret, Tenant, User};
use crate::ports::{
    ApplicationStore, Clock, CodeStore, Consumed, Entropy, LoginFinish, Mailer, RateLimiter,
    RefreshTokenStore, SigningKeyStore, TemplateStore, TenantStore, UserStore,
};

use super::tenancy::TenantScope;
use super::tokens::{issue_access_token, issue_refresh_token};
use super::{FlowError, FlowResult};

pub struct StartRequest {
    pub application_id: ApplicationId,
    pub login_id: String,
    pub login_id_types: Vec<LoginIdType>,
    pub strategy: LoginStrategy,
    pub state: Option<Map<String, Value>>,
}

pub struct Started {
    pub code: Secret,
    pub one_time_code: Option<Secret>,
}

/// Loads an application the caller may use, or the field error FusionAuth gives.
pub async fn application_in_scope<S: ApplicationStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: ApplicationId,
) -> FlowResult<Application> {
    match store.application(id).await? {
        Some(app) if scope.allows(app.tenant_id) => Ok(app),
        _ => Err(ValidationErrors::field(FieldError::invalid(
            "applicationId",
            "The application does not exist.",
        ))
        .into()),
    }
}

async fn tenant_of<S: TenantStore + ?Sized>(
    store: &S,
    id: crate::domain::TenantId,
) -> FlowResult<Tenant> {
    store
        .tenant(id)
        .await?
        .ok_or_else(|| FlowError::Internal(format!("tenant {id} is missing")))
}

async fn find_user<S: UserStore + ?Sized>(
    store: &S,
    tenant: crate::domain::TenantId,
    login_id: &str,
    types: &[LoginIdType],
) -> FlowResult<Option<User>> {
    for kind in types {
        let found = match kind {
            LoginIdType::Email => store.user_by_email(tenant, login_id).await?,
            LoginIdType::Username => store.user_by_username(tenant, login_id).await?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Creates a code for a user. A new start supersedes every earlier code of the user (S6).
#[instrument(skip_all, fields(application_id = %request.application_id))]
pub async fn start<S>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    scope: &TenantScope,
    request: StartRequest,
) -> FlowResult<Started>
where
    S: TenantStore + ApplicationStore + UserStore + CodeStore + ?Sized,
{
    let application = application_in_scope(store, scope, request.application_id).await?;
    if !application.passwordless_configuration.enabled {
        return Err(ValidationErrors::field(FieldError::new(
            "disabled",
            "applicationId",
            "Passwordless login is not enabled for this application.",
        ))
        .into());
    }
    let tenant = tenant_of(store, application.tenant_id).await?;
    let user = find_user(store, tenant.id, &request.login_id, &request.login_id_types)
        .await?
        .ok_or(FlowError::NotFound)?;
    let now = clock.now();
    let ext = &tenant.external_identifier_configuration;
    let code = ext.passwordless_login_generator.generate(entropy)?;
    let (one_time_code, ttl) = match request.strategy {
        LoginStrategy::ClickableLink => (None, tenant.code_ttl_seconds()),
        LoginStrategy::FormField => (
            Some(
                ext.passwordless_login_one_time_code_generator
                    .generate(entropy)?,
            ),
            tenant.one_time_code_ttl_seconds(),
        ),
    };
    store
        .insert_code(&PasswordlessCode {
            code_hash: code.hash(),
            one_time_code_hash: one_time_code.as_ref().map(Secret::hash),
            tenant_id: tenant.id,
            user_id: user.id,
            application_id: application.id,
            state: request.state,
            login_strategy: request.strategy,
            insert_instant: now,
            expires_at: now.plus_secs(ttl),
            emailed: false,
            failed_attempts: 0,
        })
        .await?;
    info!(user_id = %user.id, tenant_id = %tenant.id, "passwordless code started");
    Ok(Started {
        code,
        one_time_code,
    })
}

/// Where the links in emails point (S13: the configured URL, never the request's Host).
#[derive(Debug, Clone)]
pub struct LinkBase(pub String);

impl LinkBase {
    pub fn magic_link(&self, code: &Secret, tenant: &Tenant) -> String {
        format!(
            "{}/oauth2/passwordless/{}?tenantId={}",
            self.0.trim_end_matches('/'),
            code.expose(),
            tenant.id
        )
    }
}

/// Whether a send went out. Unknown codes are not an error (S9: no oracle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    NothingToSend,
}

/// Emails a started code to its user with the application's (else the tenant's) template.
#[instrument(skip_all)]
pub async fn send_code<S>(
    store: &S,
    mailer: &dyn Mailer,
    clock: &dyn Clock,
    links: &LinkBase,
    code: &Secret,
    source_address: Option<&str>,
) -> FlowResult<SendOutcome>
where
    S: TenantStore
        + ApplicationStore
        + UserStore
        + CodeStore
        + TemplateStore
        + RateLimiter
        + ?Sized,
{
    let now = clock.now();
    let hash = code.hash();
    let Some(stored) = store.code(&hash, now).await? else {
        return Ok(SendOutcome::NothingToSend);
    };
    let (Some(user), Some(application)) = (
        store.user(stored.user_id).await?,
        store.application(stored.application_id).await?,
    ) else {
        return Ok(SendOutcome::NothingToSend);
    };
    let tenant = tenant_of(store, stored.tenant_id).await?;
    enforce_send_limits(store, &tenant, &user, source_address, now).await?;
    let Some(to_email) = user.email.clone() else {
        warn!(user_id = %user.id, "passwordless send skipped: the user has no email address");
        return Ok(SendOutcome::NothingToSend);
    };
    let template_id = application
        .email_configuration
        .passwordless_email_template_id
        .or(tenant.email_configuration.passwordless_email_template_id)
        .ok_or_else(|| {
            ValidationErrors::field(FieldError::invalid(
                "applicationId",
                "No passwordless email template is configured.",
            ))
        })?;
    let template = store.template(template_id).await?.ok_or_else(|| {
        ValidationErrors::field(FieldError::invalid(
            "applicationId",
            "The passwordless email template does not exist.",
        ))
    })?;
    let context = json!({
        "code": code.expose(),
        "user": user,
        "application": application,
        "tenant": tenant,
        "state": stored.state,
        "timeToLive": stored.time_to_live_seconds(now),
        "url": links.magic_link(code, &tenant),
    });
    let (subject, html, text) = render_email(&template, &user.preferred_languages, &context)?;
    let from_email = template
        .from_email
        .clone()
        .or_else(|| tenant.email_configuration.default_from_email.clone())
        .unwrap_or_else(|| "no-reply@localhost".to_owned());
    let from_name = template
        .default_from_name
        .clone()
        .or_else(|| tenant.email_configuration.default_from_name.clone());
    let to_name = user.full_name.clone().or_else(|| {
        let parts: Vec<&str> = [user.first_name.as_deref(), user.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    // The code is stored before it is sent, and marked as emailed only after the mailer took
    // it: a failed send leaves a code that can be sent again (S23).
    let sent = mailer
        .send(&OutgoingEmail {
            from_email,
            from_name,
            to_email,
            to_name,
            subject,
            html,
            text,
        })
        .await?;
    store.mark_code_emailed(&hash).await?;
    info!(user_id = %user.id, tenant_id = %tenant.id, application_id = %application.id, message_id = %sent.message_id, "user.passwordless.code.sent");
    Ok(SendOutcome::Sent)
}

/// Per user and per source address, counted in the shared store so the limit holds across
/// every instance (S8). The address limit is ten times the user limit: offices share addresses.
async fn enforce_send_limits<S: RateLimiter + ?Sized>(
    store: &S,
    tenant: &Tenant,
    user: &User,
    source: Option<&str>,
    now: Instant,
) -> FlowResult<()> {
    let limit = &tenant.rate_limit_configuration.send_passwordless;
    if !limit.enabled {
        return Ok(());
    }
    let user_hits = store
        .hit(
            &format!("send:user:{}", user.id),
            limit.time_period_in_seconds,
            now,
        )
        .await?;
    if user_hits > limit.limit {
        warn!(user_id = %user.id, "passwordless send refused: per-user rate limit");
        return Err(FlowError::RateLimited);
    }
    if let Some(source) = source {
        let hits = store
            .hit(
                &format!("send:ip:{}:{source}", tenant.id),
                limit.time_period_in_seconds,
                now,
            )
            .await?;
        if hits > limit.limit.saturating_mul(10) {
            warn!(tenant_id = %tenant.id, "passwordless send refused: per-address rate limit");
            return Err(FlowError::RateLimited);
        }
    }
    Ok(())
}

pub struct LoginRequest {
    pub code: Secret,
    pub one_time_code: Option<Secret>,
    pub application_id: Option<ApplicationId>,
    pub ip_address: Option<String>,
    pub no_jwt: bool,
}

pub struct LoggedIn {
    /// False when the user has no registration for the application (202).
    pub registered: bool,
    pub token: Option<String>,
    pub token_expiration_instant: Option<Instant>,
    pub refresh_token: Option<Secret>,
    pub refresh_token_id: Option<RefreshTokenId>,
    pub user: User,
    pub state: Option<Map<String, Value>>,
}

/// Exchanges a code for tokens. Unknown, expired, used, superseded and mismatched codes all
/// end in `NotFound` (S10); the code is consumed exactly once (S5).
#[instrument(skip_all, fields(application_id = ?request.application_id))]
pub async fn login<S>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    scope: &TenantScope,
    request: LoginRequest,
) -> FlowResult<LoggedIn>
where
    S: TenantStore + ApplicationStore + CodeStore + SigningKeyStore + RefreshTokenStore + ?Sized,
{
    let named_application = match request.application_id {
        Some(id) => Some(application_in_scope(store, scope, id).await?),
        None => None,
    };
    let now = clock.now();
    let one_time_hash = request.one_time_code.as_ref().map(Secret::hash);
    let code = match store
        .consume_code(&request.code.hash(), one_time_hash.as_ref(), now)
        .await?
    {
        Consumed::Code(code) => *code,
        Consumed::WrongOneTimeCode => {
            warn!(ip_address = ?request.ip_address, "user.login.failed: wrong one-time code");
            return Err(FlowError::NotFound);
        }
        Consumed::Nothing => {
            info!(ip_address = ?request.ip_address, "user.login.failed: unknown code");
            return Err(FlowError::NotFound);
        }
    };
    let application = match named_application {
        Some(app) => app,
        None => store
            .application(code.application_id)
            .await?
            .ok_or(FlowError::NotFound)?,
    };
    // A code logs in only its own user, into its own tenant (S6, S22).
    if application.tenant_id != code.tenant_id || !scope.allows(code.tenant_id) {
        return Err(FlowError::NotFound);
    }
    let user = match store
        .finish_login(code.user_id, &code, application.id, now)
        .await?
    {
        LoginFinish::Completed(user) => user,
        LoginFinish::Refused(user) => {
            info!(user_id = %user.id, "user.login.failed: account refused");
            return Err(match user.login_refusal(now) {
                Some(LoginRefusal::Expired) => FlowError::UserExpired,
                _ => FlowError::UserLocked,
            });
        }
        LoginFinish::Superseded => {
            info!(user_id = %code.user_id, "user.login.failed: superseded code");
            return Err(FlowError::NotFound);
        }
    };
    let tenant = tenant_of(store, code.tenant_id).await?;
    let registered = user.registration(application.id).is_some();
    let (mut token, mut expiration, mut refresh_token, mut refresh_token_id) =
        (None, None, None, None);
    if !request.no_jwt {
        if registered && application.login_configuration.generate_refresh_tokens {
            let refresh =
                issue_refresh_token(store, entropy, &tenant, &application, &user, now).await?;
            refresh_token_id = Some(refresh.id);
            refresh_token = Some(refresh.token);
        }
        let access = issue_access_token(
            store,
            entropy,
            &tenant,
            &application,
            &user,
            now,
            refresh_token_id,
        )
        .await?;
        token = Some(access.token);
        expiration = Some(access.expiration);
    }
    info!(
        user_id = %user.id, tenant_id = %tenant.id, application_id = %application.id,
        ip_address = ?request.ip_address, authentication_type = "PASSWORDLESS", "user.login.success"
    );
    Ok(LoggedIn {
        registered,
        token,
        token_expiration_instant: expiration,
        refresh_token,
        refresh_token_id,
        user,
        state: code.state,
    })
}
