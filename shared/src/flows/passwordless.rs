//! Passwordless login: start (make a code), send (email it), login (exchange it for tokens).

use serde_json::{json, Map, Value};
use tracing::{info, instrument, warn};

use crate::domain::code::{LoginStrategy, PasswordlessCode};
use crate::domain::ids::{ApplicationId, RefreshTokenId};
use crate::domain::oauth::AuthorizationRequest;
use crate::domain::user::{normalize_login_id, LoginIdType, LoginRefusal};
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{Application, Instant, Secret, SecretHash, Tenant, User};
use crate::ports::{
    ApplicationStore, Clock, CodeStore, Consumed, Entropy, KeyVault, LoginFinish, Mailer, Proof,
    RateLimiter, RefreshTokenStore, SigningKeyStore, TemplateStore, TenantStore, TwoFactorStore,
    UserStore,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::tenancy::TenantScope;
use super::tokens::{issue_access_token, issue_refresh_token};
use super::{FlowError, FlowResult};

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

pub(crate) async fn tenant_of<S: TenantStore + ?Sized>(
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

/// An application a login may be started for or finished in (M2): in the caller's scope,
/// active, with passwordless enabled; FusionAuth's field errors otherwise.
pub async fn passwordless_application<S: ApplicationStore + ?Sized>(
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
pub struct CodeSpec {
    pub strategy: LoginStrategy,
    pub state: Option<Map<String, Value>>,
    /// The hash of the cookie of the browser that asked on the hosted page (S14).
    pub browser_binding: Option<SecretHash>,
}

/// Stores a new code for `user`, superseding the earlier ones, and returns it with its record.
async fn create_code<S: CodeStore + ?Sized>(
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

/// The ports a send needs: the code, its user, application, tenant and template, and the
/// shared rate counters.
pub trait SendStore:
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
pub async fn send_code<S>(
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
    let sent = super::mail::send_template(
        store,
        mailer,
        &super::mail::TemplatedEmail {
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
pub async fn start_and_send<S>(
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
pub struct SendPorts<'a, S: ?Sized> {
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
pub async fn limited_start_and_send<S: SendStore + ?Sized>(
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

/// How many times the per-address limit one source may use, all sources together may use for
/// one address, and one source may use for all addresses.
const WIDE_LIMIT_FACTOR: u32 = 10;

/// The mails one address can be sent in an hour, from all sources together (N8). Twenty is
/// more than a person asks for (a link works for minutes; asking again every three minutes for
/// an hour is already a struggle), few enough that an inbox is not flooded and that mailbox
/// providers do not come to see the sending domain as a bulk sender, and it bounds the short
/// codes anybody can guess against one account: five tries a login, a hundred an hour, one in
/// ten thousand an hour for the default six digits.
pub const MAX_MAILS_PER_ADDRESS_PER_HOUR: u32 = 20;
const HOUR_SECONDS: i64 = 3600;

/// How long a source an address signed in from stays one it is known at (fixed windows: the
/// current one and the one before are read).
const KNOWN_SOURCE_WINDOW_SECONDS: i64 = 30 * 24 * 3600;

/// The first half of the address's hash: what counters are keyed by, never the address.
fn address_key(normalized_login: &str) -> String {
    let mut hex = SecretHash::of(normalized_login).to_hex();
    hex.truncate(32);
    hex
}

fn known_source_key(
    tenant: crate::domain::TenantId,
    normalized_login: &str,
    source: &str,
) -> String {
    format!(
        "send:known:{tenant}:{}:{source}",
        address_key(normalized_login)
    )
}

/// Remembers that `user` signed in from `source` in a browser, so that the ceilings all sources
/// share for the address do not hold that source back (S31): whoever fills them from elsewhere
/// keeps the mail from flooding the inbox, not the user from their usual network.
pub(crate) async fn remember_source<S: RateLimiter + ?Sized>(
    store: &S,
    user: &User,
    source: Option<&str>,
    now: Instant,
) -> FlowResult<()> {
    let (Some(source), Some(login)) = (source, user.normalized_email()) else {
        return Ok(());
    };
    store
        .hit(
            &known_source_key(user.tenant_id, &login, source),
            KNOWN_SOURCE_WINDOW_SECONDS,
            now,
        )
        .await?;
    Ok(())
}

/// Counted in the shared store before anything is written, so the limits hold across every
/// instance (S8, S31), and alike whether or not the address is a user's. All counters are keyed
/// by the address's hash, never the address: one address from one source gets the tenant's
/// limit, so whoever hammers the form for somebody's address spends their own allowance and
/// not the owner's (S31); one source gets ten times that for all addresses (offices share
/// addresses). One address from all sources together gets ten times the limit and at most
/// `MAX_MAILS_PER_ADDRESS_PER_HOUR` an hour, which bounds the mail anybody can make one inbox
/// receive (N8); a source the address signed in from before is not held by these two. The
/// counters are read in one round.
async fn enforce_send_limits<S: RateLimiter + ?Sized>(
    store: &S,
    tenant: &Tenant,
    normalized_login: &str,
    source: Option<&str>,
    now: Instant,
) -> FlowResult<()> {
    let limit = &tenant.rate_limit_configuration.send_passwordless;
    if !limit.enabled {
        return Ok(());
    }
    let login = address_key(normalized_login);
    let window = limit.time_period_in_seconds;
    let wide = limit.limit.saturating_mul(WIDE_LIMIT_FACTOR);
    // (key, window, allowed, which, shared by all sources)
    let mut counters = vec![
        (
            format!("send:login:{}:{login}", tenant.id),
            window,
            if source.is_some() { wide } else { limit.limit },
            "per-address",
            true,
        ),
        (
            format!("send:login-hour:{}:{login}", tenant.id),
            HOUR_SECONDS,
            MAX_MAILS_PER_ADDRESS_PER_HOUR,
            "per-address-hourly",
            true,
        ),
    ];
    if let Some(source) = source {
        counters.push((
            format!("send:login-ip:{}:{login}:{source}", tenant.id),
            window,
            limit.limit,
            "per-address-and-source",
            false,
        ));
        counters.push((
            format!("send:ip:{}:{source}", tenant.id),
            window,
            wide,
            "per-source",
            false,
        ));
    }
    let known = async {
        let Some(source) = source else {
            return Ok(false);
        };
        let key = known_source_key(tenant.id, normalized_login, source);
        let (this, before) = futures_util::future::try_join(
            store.count(&key, KNOWN_SOURCE_WINDOW_SECONDS, now),
            store.count(
                &key,
                KNOWN_SOURCE_WINDOW_SECONDS,
                now.plus_secs(-KNOWN_SOURCE_WINDOW_SECONDS),
            ),
        )
        .await?;
        Ok::<bool, crate::ports::StoreError>(this + before > 0)
    };
    let hits = futures_util::future::try_join_all(
        counters
            .iter()
            .map(|(key, window, _, _, _)| store.hit(key, *window, now)),
    );
    let (hits, known) = futures_util::future::try_join(hits, known).await?;
    for ((_, _, allowed, which, shared), hits) in counters.iter().zip(hits) {
        if hits > *allowed && !(*shared && known) {
            warn!(tenant_id = %tenant.id, limit = which, "passwordless send refused: rate limit");
            return Err(FlowError::RateLimited);
        }
    }
    Ok(())
}

/// Wrong one-time codes one anonymous source may type in a window; past them that source's
/// one-time codes are not looked at until the window ends (S7, S33). The limit is the
/// source's, never the account's: anybody who knows an address can ask for logins to it, so
/// failures counted against the account would let anybody hold the real user's sign-in. How
/// many guesses an account can see is bounded instead by the pending login (five tries, then it
/// is burnt) and by the mails an address can be sent in an hour (`MAX_MAILS_PER_ADDRESS_PER_HOUR`).
pub const MAX_SOURCE_FAILURES_PER_WINDOW: u32 = 30;
pub const SOURCE_FAILURE_WINDOW_SECONDS: i64 = 600;

fn source_failures_key(source: &str) -> String {
    format!("login-failed:source:{source}")
}

/// Whether `source` has typed its window's share of wrong one-time codes.
pub(crate) async fn source_is_held<S: RateLimiter + ?Sized>(
    store: &S,
    source: Option<&str>,
    now: Instant,
) -> FlowResult<bool> {
    let Some(source) = source else {
        return Ok(false);
    };
    let failures = store
        .count(
            &source_failures_key(source),
            SOURCE_FAILURE_WINDOW_SECONDS,
            now,
        )
        .await?;
    Ok(failures >= MAX_SOURCE_FAILURES_PER_WINDOW)
}

/// Counts a wrong one-time code against the source that typed it.
pub(crate) async fn count_source_failure<S: RateLimiter + ?Sized>(
    store: &S,
    source: Option<&str>,
    now: Instant,
) -> FlowResult<()> {
    if let Some(source) = source {
        let failures = store
            .hit(
                &source_failures_key(source),
                SOURCE_FAILURE_WINDOW_SECONDS,
                now,
            )
            .await?;
        if failures == MAX_SOURCE_FAILURES_PER_WINDOW {
            warn!(
                failures,
                "user.login.failed: a source's wrong one-time codes wait for the window's end"
            );
        }
    }
    Ok(())
}

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
    TwoFactor(super::two_factor::PendingTwoFactor),
}

/// What a successful login still lacks, in FusionAuth's order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginVerification {
    /// The user has no registration for the application (202).
    NotRegistered,
    /// The registration waits for its verification (213).
    RegistrationUnverified,
    /// The tenant gates users whose address is not verified, and the user's is not (212).
    EmailUnverified,
    /// Nothing (200).
    Verified,
}

impl LoginVerification {
    pub fn of(tenant: &Tenant, application: &Application, user: &User) -> Self {
        match user.registration(application.id) {
            None => LoginVerification::NotRegistered,
            Some(registration) if !registration.verified => {
                LoginVerification::RegistrationUnverified
            }
            Some(_) if tenant.email_configuration.gates_unverified() && !user.verified => {
                LoginVerification::EmailUnverified
            }
            Some(_) => LoginVerification::Verified,
        }
    }
}

pub struct LoggedIn {
    /// False when the user has no registration for the application (202).
    pub registered: bool,
    pub verification: LoginVerification,
    /// The application the login finished in.
    pub application_id: ApplicationId,
    pub token: Option<String>,
    pub token_expiration_instant: Option<Instant>,
    pub refresh_token: Option<Secret>,
    pub refresh_token_id: Option<RefreshTokenId>,
    pub refresh_token_expiration_instant: Option<Instant>,
    pub user: User,
    pub state: Option<Map<String, Value>>,
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
    let source = request.source_address.as_deref();
    if matches!(
        request.presented,
        Presented::OneTimeCode(_) | Presented::BoundOneTimeCode { .. }
    ) && source_is_held(store, source, now).await?
    {
        return Err(FlowError::RateLimited);
    }
    let code = match store
        .consume_code(
            &request.code_hash,
            request.presented.proof(),
            tenant_in_scope,
            now,
        )
        .await?
    {
        Consumed::Code(code) => *code,
        Consumed::WrongOneTimeCode { user } => {
            warn!(user_id = %user, ip_address = ?request.ip_address, "user.login.failed: wrong one-time code");
            return Err(match request.presented {
                Presented::Link => FlowError::WrongOneTimeCode { missing: true },
                Presented::OneTimeCode(_) | Presented::BoundOneTimeCode { .. } => {
                    count_source_failure(store, source, now).await?;
                    FlowError::WrongOneTimeCode { missing: false }
                }
                Presented::BoundBrowser(_) => FlowError::NotFound,
            });
        }
        Consumed::Nothing => {
            info!(ip_address = ?request.ip_address, "user.login.failed: unknown code");
            return Err(FlowError::NotFound);
        }
    };
    let application = match named_application {
        Some(app) => app,
        None => {
            let own = store
                .application(code.application_id)
                .await?
                .ok_or(FlowError::NotFound)?;
            if !own.active || !own.passwordless_configuration.enabled {
                info!(application_id = %own.id, "user.login.failed: the application no longer takes passwordless logins");
                return Err(FlowError::NotFound);
            }
            own
        }
    };
    // A code logs in only its own user, into its own tenant (S6, S22).
    if application.tenant_id != code.tenant_id || !scope.allows(code.tenant_id) {
        return Err(FlowError::NotFound);
    }
    let tenant = tenant_of(store, code.tenant_id).await?;
    let mut code = code;
    // An emailed code proves the address only where the tenant lets a login say so.
    code.emailed &= tenant
        .email_configuration
        .implicit_email_verification_allowed;
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
    let second = super::two_factor::second_step(
        store,
        clock,
        entropy,
        super::two_factor::FirstFactor {
            tenant: &tenant,
            application: &application,
            user: &user,
            trust: request.two_factor_trust.as_ref(),
            state: code.state.clone(),
            authorization: request.authorization,
        },
    )
    .await?;
    if let super::two_factor::SecondStep::Required(pending) = second {
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

/// What a login that proved every factor it needs is finished with.
pub struct Completing<'a> {
    pub tenant: &'a Tenant,
    pub application: &'a Application,
    pub user: User,
    pub no_jwt: bool,
    pub state: Option<Map<String, Value>>,
    pub now: Instant,
}

/// Issues what a finished login answers: the refresh token (where the application makes them
/// and the user is registered) and the access token, unless `no_jwt`.
pub async fn complete_login<S>(
    store: &S,
    vault: &dyn KeyVault,
    entropy: &dyn Entropy,
    completing: Completing<'_>,
) -> FlowResult<LoggedIn>
where
    S: SigningKeyStore + RefreshTokenStore + ?Sized,
{
    let Completing {
        tenant,
        application,
        user,
        no_jwt,
        state,
        now,
    } = completing;
    let registered = user.registration(application.id).is_some();
    let (mut token, mut expiration, mut refresh_token, mut refresh_token_id) =
        (None, None, None, None);
    let mut refresh_expiration = None;
    if !no_jwt {
        if registered && application.login_configuration.generate_refresh_tokens {
            let refresh =
                issue_refresh_token(store, entropy, tenant, application, &user, now, None, false)
                    .await?;
            refresh_token_id = Some(refresh.id);
            refresh_token = Some(refresh.token);
            refresh_expiration = Some(refresh.expires_at);
        }
        let access = issue_access_token(
            store,
            vault,
            entropy,
            tenant,
            application,
            &user,
            now,
            refresh_token_id,
        )
        .await?;
        token = Some(access.token);
        expiration = Some(access.expiration);
    }
    Ok(LoggedIn {
        registered,
        verification: LoginVerification::of(tenant, application, &user),
        application_id: application.id,
        token,
        token_expiration_instant: expiration,
        refresh_token,
        refresh_token_id,
        refresh_token_expiration_instant: refresh_expiration,
        user,
        state,
    })
}
