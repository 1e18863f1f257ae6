//! Sending a code: the email with its link (and short code), paced per process, and the
//! start-and-send of the deprecated send form and the hosted page.

use serde_json::json;
use tracing::{info, instrument, warn};

use crate::domain::code::{LoginStrategy, PasswordlessCode};
use crate::domain::user::{normalize_login_id, LoginIdType};
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Application, Instant, Secret, SecretHash, Tenant, User};
use crate::ports::{
    ApplicationStore, Clock, CodeStore, Entropy, Mailer, RateLimiter, TemplateStore, TenantStore,
    UserStore,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::flows::links::LinkBase;
use crate::flows::tenancy::TenantScope;
use crate::flows::{FlowError, FlowResult};

use super::limits::enforce_send_limits;
use super::{create_code, find_user, passwordless_application, tenant_of, CodeSpec, StartRequest};

/// Whether a send went out. Unknown codes are not an error (S9: no oracle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendOutcome {
    Sent,
    NothingToSend,
}

/// The ports a send needs: the code, its user, application, tenant and template, and the
/// shared rate counters.
pub(crate) trait SendStore:
    TenantStore + ApplicationStore + UserStore + CodeStore + TemplateStore + RateLimiter
{
}

impl<T> SendStore for T where
    T: TenantStore
        + ApplicationStore
        + UserStore
        + CodeStore
        + TemplateStore
        + RateLimiter
        + ?Sized
{
}

/// Emails a started code to its user with the application's (else the tenant's) template.
#[instrument(skip_all)]
pub(crate) async fn send_code<S>(
    store: &S,
    mailer: &dyn Mailer,
    clock: &dyn Clock,
    links: &LinkBase,
    code: &Secret,
    source_address: Option<&str>,
) -> FlowResult<SendOutcome>
where
    S: SendStore + ?Sized,
{
    let now = clock.now();
    let Some(stored) = store.code(&code.hash(), now).await? else {
        return Ok(SendOutcome::NothingToSend);
    };
    let (Some(user), Some(application)) = (
        store.user(stored.user_id).await?,
        store.application(stored.application_id).await?,
    ) else {
        return Ok(SendOutcome::NothingToSend);
    };
    let tenant = tenant_of(store, stored.tenant_id).await?;
    let login = user
        .normalized_email()
        .or_else(|| user.normalized_username())
        .unwrap_or_else(|| user.id.to_string());
    enforce_send_limits(store, &tenant, &login, source_address, now).await?;
    deliver(
        store,
        mailer,
        links,
        &Delivery {
            tenant: &tenant,
            application: &application,
            user: &user,
            stored: &stored,
            code,
            one_time_code: None,
        },
        now,
    )
    .await
}

/// What one passwordless email is about.
struct Delivery<'a> {
    tenant: &'a Tenant,
    application: &'a Application,
    user: &'a User,
    stored: &'a PasswordlessCode,
    code: &'a Secret,
    /// Known only right after the start that made it (the store keeps its hash).
    one_time_code: Option<&'a Secret>,
}

/// Renders the application's (else the tenant's) template for the code and hands it to the
/// mailer. The code is stored before it is sent, and marked as emailed only after the mailer
/// took it: a failed send leaves a code that can be sent again (S23).
async fn deliver<S: TemplateStore + CodeStore + ?Sized>(
    store: &S,
    mailer: &dyn Mailer,
    links: &LinkBase,
    delivery: &Delivery<'_>,
    now: Instant,
) -> FlowResult<SendOutcome> {
    let Delivery {
        tenant,
        application,
        user,
        stored,
        code,
        one_time_code,
    } = *delivery;
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
    let context = json!({
        "code": code.expose(),
        "oneTimeCode": one_time_code.map(Secret::expose),
        "user": user,
        "application": application,
        "tenant": tenant,
        "state": stored.state,
        "timeToLive": stored.time_to_live_seconds(now),
        "url": links.magic_link(code, tenant),
    });
    let sent = crate::flows::mail::send_template(
        store,
        mailer,
        &crate::flows::mail::TemplatedEmail {
            tenant,
            template_id,
            to_email,
            user,
            context: &context,
            field: "applicationId",
        },
        now,
    )
    .await?;
    store.mark_code_emailed(&stored.code_hash).await?;
    info!(user_id = %user.id, tenant_id = %tenant.id, application_id = %application.id, message_id = %sent.message_id, "user.passwordless.code.sent");
    Ok(SendOutcome::Sent)
}

/// Paces the send-by-address answers so that a known and an unknown address take the same time
/// (S9): both end at the same deadline after the lookup, a little past the running mean of what
/// making and sending a code takes in this process. Both sides wait on the same timer, so its
/// granularity cannot tell them apart; a send slower than the deadline shows only as noise.
pub struct SendPacer {
    mean_micros: AtomicU64,
}

impl Default for SendPacer {
    fn default() -> Self {
        Self {
            mean_micros: AtomicU64::new(Self::FIRST_GUESS.as_micros() as u64),
        }
    }
}

impl SendPacer {
    /// Before the first real send is measured: about one SES call and one DynamoDB write.
    const FIRST_GUESS: Duration = Duration::from_millis(40);

    /// Folds one measured duration into the mean (weight 1/8: a slow send moves it, an outlier
    /// does not own it).
    pub fn record(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .mean_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
                Some(mean - mean / 8 + took / 8)
            });
    }

    /// How long after the lookup every answer ends: the mean and a quarter, so that most real
    /// sends finish before it.
    pub fn deadline(&self) -> Duration {
        let mean = self.mean_micros.load(Ordering::Relaxed);
        Duration::from_micros(mean + mean / 4)
    }

    /// Waits until the deadline after `since`.
    pub async fn pad(&self, since: std::time::Instant) {
        if let Some(rest) = self.deadline().checked_sub(since.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
}

/// The deprecated send form `{applicationId, loginId, state}`: starts and sends in one call.
/// It needs an API key (ours, S31), counts the rate limits before anything is written, and
/// answers alike, in the same time, for known and unknown addresses (S9).
#[instrument(skip_all, fields(application_id = %request.application_id))]
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start_and_send<S>(
    store: &S,
    mailer: &dyn Mailer,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    links: &LinkBase,
    pacer: &SendPacer,
    scope: &TenantScope,
    request: StartRequest,
    source_address: Option<&str>,
) -> FlowResult<SendOutcome>
where
    S: SendStore + ?Sized,
{
    if !scope.authenticated {
        return Err(FlowError::Unauthorized);
    }
    let application = passwordless_application(store, scope, request.application_id).await?;
    let ports = SendPorts {
        store,
        mailer,
        clock,
        entropy,
        links,
        pacer,
    };
    let spec = CodeSpec {
        strategy: LoginStrategy::ClickableLink,
        state: request.state,
        browser_binding: None,
    };
    limited_start_and_send(
        &ports,
        &application,
        &request.login_id,
        &request.login_id_types,
        spec,
        source_address,
    )
    .await
    .map(|(outcome, _)| outcome)
}

/// The ports a start-and-send uses, in one place.
pub(crate) struct SendPorts<'a, S: ?Sized> {
    pub store: &'a S,
    pub mailer: &'a dyn Mailer,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
    pub links: &'a LinkBase,
    pub pacer: &'a SendPacer,
}

/// Starts and sends a code for whoever `login_id` names in the application's tenant. The limits
/// are counted before anything is read or written (S8, S31), and a known and an unknown
/// address answer alike, at the same deadline (S9). Answers the new code's hash when there was
/// a user to send one to.
pub(crate) async fn limited_start_and_send<S: SendStore + ?Sized>(
    ports: &SendPorts<'_, S>,
    application: &Application,
    login_id: &str,
    login_id_types: &[LoginIdType],
    spec: CodeSpec,
    source_address: Option<&str>,
) -> FlowResult<(SendOutcome, Option<SecretHash>)> {
    let store = ports.store;
    let tenant = tenant_of(store, application.tenant_id).await?;
    let now = ports.clock.now();
    enforce_send_limits(
        store,
        &tenant,
        &normalize_login_id(login_id),
        source_address,
        now,
    )
    .await?;
    let began = std::time::Instant::now();
    let Some(user) = find_user(store, tenant.id, login_id, login_id_types).await? else {
        ports.pacer.pad(began).await;
        return Ok((SendOutcome::NothingToSend, None));
    };
    let (started, stored) =
        create_code(store, now, ports.entropy, &tenant, application, &user, spec).await?;
    let delivery = Delivery {
        tenant: &tenant,
        application,
        user: &user,
        stored: &stored,
        code: &started.code,
        one_time_code: started.one_time_code.as_ref(),
    };
    let outcome = deliver(store, ports.mailer, ports.links, &delivery, now).await?;
    ports.pacer.record(began.elapsed());
    ports.pacer.pad(began).await;
    Ok((outcome, Some(stored.code_hash)))
}
