//! Passwordless login: start (make a code), send (email it), login (exchange it for tokens).

use serde_json::{Map, Value};
use tracing::{info, instrument};

use crate::domain::code::{LoginStrategy, PasswordlessCode};
use crate::domain::ids::ApplicationId;
use crate::domain::user::LoginIdType;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Application, Instant, Secret, SecretHash, Tenant, User};
use crate::ports::{ApplicationStore, Clock, CodeStore, Entropy, TenantStore, UserStore};

use super::tenancy::TenantScope;
use super::tenancy::{application_in_scope, tenant_of};
pub use super::tokens::{LoggedIn, LoginVerification};
use super::{FlowError, FlowResult};

mod limits;
mod login;
mod send;

pub use super::links::LinkBase;
pub(crate) use limits::{count_source_failure, remember_source, source_is_held};
pub use login::login;
pub use login::Presented;
pub use login::{LoginOutcome, LoginRequest};
pub use send::SendPacer;
pub(crate) use send::{
    limited_start_and_send, send_code, start_and_send, SendOutcome, SendPorts, SendStore,
};

pub struct StartRequest {
    pub application_id: ApplicationId,
    pub login_id: String,
    pub login_id_types: Vec<LoginIdType>,
    /// `None`: the application's `passwordlessConfiguration.emailLoginStrategy`.
    pub strategy: Option<LoginStrategy>,
    pub state: Option<Map<String, Value>>,
}

pub struct Started {
    pub code: Secret,
    pub one_time_code: Option<Secret>,
}

pub(super) async fn find_user<S: UserStore + ?Sized>(
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

/// An application a login may be started for or finished in (M2): in the caller's scope,
/// active, with passwordless enabled; FusionAuth's field errors otherwise.
pub(crate) async fn passwordless_application<S: ApplicationStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: ApplicationId,
) -> FlowResult<Application> {
    let application = application_in_scope(store, scope, id).await?;
    if !application.active {
        return Err(ValidationErrors::field(FieldError::invalid(
            "applicationId",
            "The application is not active.",
        ))
        .into());
    }
    if !application.passwordless_configuration.enabled {
        return Err(ValidationErrors::field(FieldError::new(
            "disabled",
            "applicationId",
            "Passwordless login is not enabled for this application.",
        ))
        .into());
    }
    Ok(application)
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
    let application = passwordless_application(store, scope, request.application_id).await?;
    let tenant = tenant_of(store, application.tenant_id).await?;
    let user = find_user(store, tenant.id, &request.login_id, &request.login_id_types)
        .await?
        .ok_or(FlowError::NotFound)?;
    let (started, _) = create_code(
        store,
        clock.now(),
        entropy,
        &tenant,
        &application,
        &user,
        CodeSpec {
            strategy: request
                .strategy
                .unwrap_or(application.passwordless_configuration.email_login_strategy),
            state: request.state,
            browser_binding: None,
        },
    )
    .await?;
    Ok(started)
}

/// What a new code carries besides its user.
#[derive(Debug, Clone, Default)]
pub(crate) struct CodeSpec {
    pub strategy: LoginStrategy,
    pub state: Option<Map<String, Value>>,
    /// The hash of the cookie of the browser that asked on the hosted page (S14).
    pub browser_binding: Option<SecretHash>,
}

/// Stores a new code for `user`, superseding the earlier ones, and returns it with its record.
pub(super) async fn create_code<S: CodeStore + ?Sized>(
    store: &S,
    now: Instant,
    entropy: &dyn Entropy,
    tenant: &Tenant,
    application: &Application,
    user: &User,
    spec: CodeSpec,
) -> FlowResult<(Started, PasswordlessCode)> {
    let CodeSpec {
        strategy,
        state,
        browser_binding,
    } = spec;
    let ext = &tenant.external_identifier_configuration;
    let code = ext.passwordless_login_generator.generate(entropy)?;
    let (one_time_code, ttl) = match strategy {
        LoginStrategy::ClickableLink => (None, tenant.code_ttl_seconds()),
        LoginStrategy::FormField => (
            Some(
                ext.passwordless_login_one_time_code_generator
                    .generate(entropy)?,
            ),
            tenant.one_time_code_ttl_seconds(),
        ),
    };
    let record = PasswordlessCode {
        code_hash: code.hash(),
        one_time_code_hash: one_time_code.as_ref().map(Secret::hash),
        tenant_id: tenant.id,
        user_id: user.id,
        application_id: application.id,
        state,
        login_strategy: strategy,
        insert_instant: now,
        expires_at: now.plus_secs(ttl),
        emailed: false,
        failed_attempts: 0,
        browser_binding,
    };
    store.insert_code(&record).await?;
    info!(user_id = %user.id, tenant_id = %tenant.id, "passwordless code started");
    Ok((
        Started {
            code,
            one_time_code,
        },
        record,
    ))
}
