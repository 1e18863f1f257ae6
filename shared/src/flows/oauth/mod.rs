//! The magic link's page and the OAuth 2.0 authorization-code grant it ends in: a completed
//! passwordless login leaves a single-use authorization code, and the token endpoint exchanges
//! it for tokens (RFC 6749, RFC 7636, OpenID Connect Core).

use tracing::instrument;

use crate::domain::generator::CodeGenerator;
use crate::domain::oauth::{
    redirect_with, AuthorizationError, AuthorizationGrant, AuthorizationRequest, UserState,
    MAX_AUTHORIZATION_CODE_SECONDS,
};
use crate::domain::user::LoginIdType;
use crate::domain::{
    Application, LoginStrategy, PasswordlessCode, Secret, SecretHash, Tenant, TenantId,
};
use crate::ports::{
    ApplicationStore, Clock, CodeStore, Entropy, GrantStore, KeyVault, RateLimiter,
    RefreshTokenStore, SigningKeyStore, TenantStore, TwoFactorStore, UserStore,
};

use crate::flows::passwordless::{
    self, limited_start_and_send, CodeSpec, LoginOutcome, LoginRequest, Presented, SendPorts,
    SendStore,
};
use crate::flows::tenancy::{tenant_of, TenantScope};
use crate::flows::two_factor::PendingTwoFactor;

mod authorization_code;
mod refresh_token;
mod token;

use crate::flows::{FlowError, FlowResult};
pub(crate) use refresh_token::{rotate_refresh, Redeemer};
pub(crate) use token::authenticate_client;
pub use token::{exchange, ClientCredentials, CodeGrant, Grant, TokenError, TokenRequest};
pub use token::{OAuthError, TokenStore, Tokens};

/// Authorization codes: 32 random bytes, like link codes (S1).
const AUTHORIZATION_CODE: CodeGenerator = CodeGenerator {
    length: 32,
    kind: crate::domain::GeneratorType::RandomBytes,
};

/// What the page behind a magic link may offer. Looking never consumes anything (S14).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LinkView {
    /// A live code: the page offers a button whose POST completes the login. With
    /// `short_code`, an API-started code that wants its short one-time code: the page asks for
    /// it, since the link alone would only spend a try (S7).
    Continue { short_code: bool },
    /// A login asked for on the hosted page, opened in another browser: it completes only in
    /// the browser that asked (S14), unless the tenant lets the person confirm here.
    OtherBrowser { may_confirm: bool },
    /// Unknown, expired, used or superseded: one answer for all (S10).
    Expired,
}

/// An API-started code that completes only with its short one-time code: no browser is bound
/// to it, so the link alone proves nothing more than a guess (N16).
fn needs_short_code(code: &PasswordlessCode) -> bool {
    code.browser_binding.is_none() && code.one_time_code_hash.is_some()
}

/// Whether `binding` (the browser's cookie) may complete `code`: any browser for an
/// API-started code, only the asking one for a hosted-started code (compared by hash, S3).
fn bound_to(code: &PasswordlessCode, binding: Option<&Secret>) -> bool {
    match &code.browser_binding {
        None => true,
        Some(expected) => binding.is_some_and(|b| expected.matches(&b.hash())),
    }
}

/// Looks at a magic link's code without touching it; answers the code's tenant with a live
/// code (its pages wear the tenant's templates) and the redirect URI its sign-in ends at.
pub(crate) async fn view_link<S: CodeStore + TenantStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    code: &Secret,
    binding: Option<&Secret>,
) -> FlowResult<(LinkView, Option<Tenant>, Option<String>)> {
    let Some(stored) = store.code(&code.hash(), clock.now()).await? else {
        return Ok((LinkView::Expired, None, None));
    };
    let redirect_uri = request_of(&stored).ok().map(|r| r.redirect_uri);
    let tenant = tenant_of(store, stored.tenant_id).await?;
    let view = match bound_to(&stored, binding) {
        true => LinkView::Continue {
            short_code: needs_short_code(&stored),
        },
        false => LinkView::OtherBrowser {
            may_confirm: tenant.hosted_pages_configuration.finish_in_other_browser,
        },
    };
    Ok((view, Some(tenant), redirect_uri))
}

/// The `preferredLanguages` of the user a live link's code belongs to, for its pages when the
/// browser names no language they speak. Only for pages that already show the code is live
/// (never the "check your email" page, which must not tell known from unknown addresses, S9).
pub(crate) async fn link_owner_languages<S: CodeStore + UserStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    code: &Secret,
) -> FlowResult<Vec<String>> {
    let Some(stored) = store.code(&code.hash(), clock.now()).await? else {
        return Ok(Vec::new());
    };
    Ok(store
        .user(stored.user_id)
        .await?
        .map(|user| user.preferred_languages)
        .unwrap_or_default())
}

/// Whether the code's tenant lets a browser that did not ask finish its login after the
/// person confirms there.
async fn finishes_in_other_browser<S: TenantStore + ?Sized>(
    store: &S,
    stored: &PasswordlessCode,
) -> FlowResult<bool> {
    Ok(tenant_of(store, stored.tenant_id)
        .await?
        .hosted_pages_configuration
        .finish_in_other_browser)
}

/// The browser binding a hosted request hands out: 32 random bytes, kept by the browser in a
/// cookie and by the code as a hash.
const BROWSER_BINDING: CodeGenerator = CodeGenerator {
    length: 32,
    kind: crate::domain::GeneratorType::RandomBytes,
};

/// Why a hosted sign-in cannot go on: the authorization request is refused (an error page,
/// never a redirect, S17), or the flow failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthorizeError {
    #[error(transparent)]
    Refused(#[from] AuthorizationError),
    #[error(transparent)]
    Flow(#[from] FlowError),
}

impl From<crate::ports::StoreError> for AuthorizeError {
    fn from(error: crate::ports::StoreError) -> Self {
        AuthorizeError::Flow(error.into())
    }
}

/// An authorization request its application accepts (S17, S19), with the application and its
/// tenant. Only [`check_authorization`] makes one, so a flow handed one need not check again.
#[derive(Debug, Clone)]
pub(crate) struct CheckedAuthorization {
    request: AuthorizationRequest,
    application: Application,
    tenant: Option<Tenant>,
}

impl CheckedAuthorization {
    pub fn request(&self) -> &AuthorizationRequest {
        &self.request
    }

    pub fn tenant(&self) -> Option<&Tenant> {
        self.tenant.as_ref()
    }
}

/// Checks an authorization request against its application before any page offers a form:
/// an unknown or inactive client, a redirect URI it did not authorize, a PKCE policy it breaks
/// or passwordless turned off is refused.
pub(crate) async fn check_authorization<S: ApplicationStore + TenantStore + ?Sized>(
    store: &S,
    request: AuthorizationRequest,
) -> Result<CheckedAuthorization, AuthorizeError> {
    let application = store
        .application(request.client_id)
        .await?
        .ok_or(AuthorizationError::InvalidClient)?;
    application.check_authorization(&request)?;
    if !application.passwordless_configuration.enabled {
        return Err(AuthorizationError::PasswordlessDisabled.into());
    }
    let tenant = store.tenant(application.tenant_id).await?;
    Ok(CheckedAuthorization {
        request,
        application,
        tenant,
    })
}

/// Asks for a magic link from the hosted page, for an authorization request checked on this
/// very request (its fields came back from the browser): starts and sends a code that carries
/// the request and is bound to the asking browser. Unknown addresses get the same answer,
/// binding and time, and no email (S9); the limits are counted first (S8, S31). The login has a
/// link and a short code, in one record and one email. Answers what the browser keeps in
/// cookies.
#[instrument(skip_all, fields(application_id = %checked.request.client_id))]
pub(crate) async fn request_link<S: SendStore + ?Sized>(
    ports: &SendPorts<'_, S>,
    checked: &CheckedAuthorization,
    email: &str,
    source_address: Option<&str>,
) -> FlowResult<Pending> {
    let binding = BROWSER_BINDING.generate(ports.entropy)?;
    let state = checked
        .request
        .parameters()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), serde_json::Value::String(value)))
        .collect();
    let spec = CodeSpec {
        strategy: LoginStrategy::FormField,
        state: Some(state),
        browser_binding: Some(binding.hash()),
    };
    // An unknown address gets a pending reference of the same shape, to nothing (S9).
    let mut decoy = [0u8; 32];
    ports.entropy.fill(&mut decoy)?;
    let (_, code_hash) = limited_start_and_send(
        ports,
        &checked.application,
        email,
        &[LoginIdType::Email],
        spec,
        source_address,
    )
    .await?;
    Ok(Pending {
        binding,
        code_hash: code_hash.unwrap_or_else(|| SecretHash::from_bytes(decoy)),
    })
}

/// What the asking browser keeps after a hosted request: the binding (a secret) and the hash
/// of its code (no secret: it names the login the short code completes).
pub(crate) struct Pending {
    pub binding: Secret,
    pub code_hash: SecretHash,
}

/// How completing a magic link ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Completion {
    /// Signed in: send the browser here (the client's redirect URI with an authorization code
    /// and no secret of ours in it, S16).
    Redirect(String),
    /// Unknown, expired, used or superseded (S10).
    Expired,
    /// The code carries no usable authorization request; nothing was consumed, and nothing may
    /// redirect (S17).
    Refused(AuthorizationError),
    /// A hosted-started login in a browser that did not ask for it: nothing was consumed (S14).
    OtherBrowser,
    /// A short code that completes nothing: not the login's (counted, S7; the login lives on
    /// until its fifth), or the login is dead or never was (S9: the page cannot tell which).
    WrongOneTimeCode,
    /// The source typed its window's share of wrong short codes and waits (S33); nothing was
    /// looked at or spent.
    SourceHeld,
    /// The code is spent and the user's second factor is asked for next; the authorization
    /// request waits with the pending step.
    TwoFactor(Box<SecondStepAhead>),
}

/// A sign-in whose second step comes next: the step, its tenant (whose pages show it) and
/// where the sign-in goes once the step is done (the step's page posts there in the end).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SecondStepAhead {
    pub pending: PendingTwoFactor,
    pub tenant_id: TenantId,
    pub redirect_uri: String,
}

/// The ports completing a link needs: the passwordless login's, plus grants.
pub(crate) trait LinkStore:
    TenantStore
    + ApplicationStore
    + UserStore
    + CodeStore
    + SigningKeyStore
    + RefreshTokenStore
    + RateLimiter
    + GrantStore
    + TwoFactorStore
{
}

impl<T> LinkStore for T where
    T: TenantStore
        + ApplicationStore
        + UserStore
        + CodeStore
        + SigningKeyStore
        + RefreshTokenStore
        + RateLimiter
        + GrantStore
        + TwoFactorStore
        + ?Sized
{
}

/// The authorization request an API-started code carries in its `state` (FusionAuth's
/// integration: `client_id`, `redirect_uri`, `response_type`, `scope`, `state`, and here also
/// `nonce` and `code_challenge`).
fn request_of(code: &PasswordlessCode) -> Result<AuthorizationRequest, AuthorizationError> {
    let state = code.state.as_ref();
    let lookup = |name: &str| state.and_then(|s| s.get(name)).and_then(|v| v.as_str());
    AuthorizationRequest::from_parameters(lookup)?.ok_or(AuthorizationError::InvalidClient)
}

/// What the request that completes a login tells about the person's browser.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompletingBrowser {
    /// The source address, for the login event (S27: the platform's, never a header's).
    pub ip_address: Option<String>,
    /// The language the browser asked for (`locale`, then `Accept-Language`); the client gets
    /// it as FusionAuth's `locale`, else the user's first preferred language.
    pub locale: Option<String>,
    /// The hash of the browser's `fusionauth.trust` cookie: a trusted browser skips the
    /// second step where the application's trust policy accepts it.
    pub two_factor_trust: Option<SecretHash>,
}

/// Completes the login behind a magic link from its page's POST: checks the authorization
/// request the code carries (before anything is consumed), consumes the code through the
/// passwordless login, and leaves an authorization code for the client. A code asked for on
/// the hosted page completes only in the browser bound to it (S14).
#[instrument(skip_all)]
#[allow(clippy::too_many_arguments)]
pub(crate) async fn complete_link<S: LinkStore + ?Sized>(
    ports: &CompletionPorts<'_, S>,
    code: &Secret,
    binding: Option<&Secret>,
    typed: Option<&Secret>,
    confirmed_here: bool,
    browser: CompletingBrowser,
) -> FlowResult<Completion> {
    let code_hash = code.hash();
    let Some(stored) = ports.store.code(&code_hash, ports.clock.now()).await? else {
        return Ok(Completion::Expired);
    };
    let presented = match (&stored.browser_binding, binding) {
        (None, _) if needs_short_code(&stored) => match typed {
            Some(typed) => Presented::OneTimeCode(typed.hash()),
            // Nothing typed: nothing is spent; the page asks again.
            None => return Ok(Completion::WrongOneTimeCode),
        },
        (None, _) => Presented::Link,
        (Some(_), Some(binding)) if bound_to(&stored, Some(binding)) => {
            Presented::BoundBrowser(binding.hash())
        }
        // The tenant lets the person finish here once they confirm: the code is taken by its
        // own binding, in the same single conditional write as in the browser that asked.
        (Some(expected), _)
            if confirmed_here && finishes_in_other_browser(ports.store, &stored).await? =>
        {
            Presented::BoundBrowser(*expected)
        }
        (Some(_), _) => return Ok(Completion::OtherBrowser),
    };
    finish(ports, &stored, code_hash, presented, browser).await
}

/// Completes a login asked for on the hosted page with the short code from its email, typed
/// into the browser that asked (which holds the code's hash in a cookie). Five wrong codes
/// burn it (S7); the link and the short code share one record, so either ends both.
#[instrument(skip_all)]
pub(crate) async fn complete_with_one_time_code<S: LinkStore + ?Sized>(
    ports: &CompletionPorts<'_, S>,
    pending: &SecretHash,
    binding: Option<&Secret>,
    typed: &Secret,
    browser: CompletingBrowser,
) -> FlowResult<Completion> {
    let (store, clock) = (ports.store, ports.clock);
    let now = clock.now();
    let source = browser.ip_address.as_deref();
    // A wrong code, a login that is dead (used, expired, burnt by its fifth wrong try), one
    // that never was (an unknown address's decoy) and a pending reference without this
    // browser's binding all answer alike: telling them apart would tell whether the address
    // has an account (S9). A live login checks the source in the passwordless login.
    let Some(stored) = store.code(pending, now).await? else {
        return nothing_to_complete(store, source, now).await;
    };
    let Some(binding) =
        binding.filter(|_| stored.browser_binding.is_some() && bound_to(&stored, binding))
    else {
        return nothing_to_complete(store, source, now).await;
    };
    // The store checks the binding again as it counts the try: the code cannot change hands
    // between the look and the take.
    let presented = Presented::BoundOneTimeCode {
        typed: typed.hash(),
        binding: binding.hash(),
    };
    match finish(ports, &stored, *pending, presented, browser).await? {
        Completion::Expired | Completion::OtherBrowser => Ok(Completion::WrongOneTimeCode),
        other => Ok(other),
    }
}

/// A short code that names nothing to complete: a source past its share of wrong codes waits
/// (S33), as it would for a live login; any other counts a wrong code against it.
async fn nothing_to_complete<S: LinkStore + ?Sized>(
    store: &S,
    source: Option<&str>,
    now: crate::domain::Instant,
) -> FlowResult<Completion> {
    if passwordless::source_is_held(store, source, now).await? {
        return Ok(Completion::SourceHeld);
    }
    passwordless::count_source_failure(store, source, now).await?;
    Ok(Completion::WrongOneTimeCode)
}

/// The ports completing a login uses.
pub(crate) struct CompletionPorts<'a, S: ?Sized> {
    pub store: &'a S,
    pub vault: &'a dyn KeyVault,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
}

/// The end of every hosted completion: the authorization request the code carries is checked
/// before anything is consumed; the code is consumed by the passwordless login; an
/// authorization code is left for the client.
async fn finish<S: LinkStore + ?Sized>(
    ports: &CompletionPorts<'_, S>,
    stored: &PasswordlessCode,
    code_hash: SecretHash,
    presented: Presented,
    browser: CompletingBrowser,
) -> FlowResult<Completion> {
    let store = ports.store;
    let request = match request_of(stored) {
        Ok(request) => request,
        Err(refusal) => return Ok(Completion::Refused(refusal)),
    };
    let application = match store.application(request.client_id).await? {
        Some(application) if application.tenant_id == stored.tenant_id => application,
        _ => return Ok(Completion::Refused(AuthorizationError::InvalidClient)),
    };
    if let Err(refusal) = application.check_authorization(&request) {
        return Ok(Completion::Refused(refusal));
    }
    let source = browser.ip_address.clone();
    let outcome = passwordless::login(
        store,
        ports.vault,
        ports.clock,
        ports.entropy,
        &TenantScope::default(),
        LoginRequest {
            code_hash,
            presented,
            application_id: Some(application.id),
            source_address: source.clone(),
            ip_address: browser.ip_address,
            no_jwt: true,
            two_factor_trust: browser.two_factor_trust,
            authorization: Some(request.clone()),
        },
    )
    .await;
    if let Ok(LoginOutcome::LoggedIn(done)) = &outcome {
        // The mail reached this browser's user: its source is one they sign in from.
        passwordless::remember_source(store, &done.user, source.as_deref(), ports.clock.now())
            .await?;
    }
    let logged_in = match outcome {
        Ok(LoginOutcome::LoggedIn(logged_in)) => logged_in,
        Ok(LoginOutcome::TwoFactor(pending)) => {
            return Ok(Completion::TwoFactor(Box::new(SecondStepAhead {
                pending,
                tenant_id: application.tenant_id,
                redirect_uri: request.redirect_uri.clone(),
            })))
        }
        // The login lives on until its fifth wrong try; whether it still does is not told.
        Err(FlowError::WrongOneTimeCode { .. }) => return Ok(Completion::WrongOneTimeCode),
        Err(FlowError::NotFound) => return Ok(Completion::Expired),
        Err(FlowError::RateLimited) => return Ok(Completion::SourceHeld),
        Err(other) => return Err(other),
    };
    redirect_to_client(
        ports,
        &application,
        &logged_in.user,
        logged_in.registered,
        request,
        browser.locale,
    )
    .await
}

/// Leaves an authorization code for the client and sends the browser back to it.
pub(crate) async fn redirect_to_client<S: TenantStore + GrantStore + ?Sized>(
    ports: &CompletionPorts<'_, S>,
    application: &Application,
    user: &crate::domain::User,
    registered: bool,
    request: AuthorizationRequest,
    locale: Option<String>,
) -> FlowResult<Completion> {
    let user_state = match registered {
        true => UserState::Authenticated,
        false => UserState::AuthenticatedNotRegistered,
    };
    let (authorization_code, issuer) = grant_authorization(
        ports.store,
        ports.clock,
        ports.entropy,
        application,
        user,
        request.clone(),
        user_state,
    )
    .await?;
    let locale = locale.or_else(|| user.preferred_languages.first().cloned());
    let mut parameters = vec![("code", authorization_code.expose())];
    if let Some(locale) = locale.as_deref() {
        parameters.push(("locale", locale));
    }
    if let Some(state) = request.state.as_deref() {
        parameters.push(("state", state));
    }
    parameters.push(("userState", user_state.as_str()));
    // RFC 9207: the client learns which issuer answered, against mix-up attacks.
    parameters.push(("iss", &issuer));
    Ok(Completion::Redirect(redirect_with(
        &request.redirect_uri,
        &parameters,
    )))
}

/// Stores a grant for the token endpoint and returns its authorization code and the issuer of
/// the tenant it was granted in.
async fn grant_authorization<S: TenantStore + GrantStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    application: &Application,
    user: &crate::domain::User,
    request: AuthorizationRequest,
    user_state: UserState,
) -> FlowResult<(Secret, String)> {
    let tenant = tenant_of(store, application.tenant_id).await?;
    let now = clock.now();
    let ttl = tenant
        .external_identifier_configuration
        .authorization_grant_id_time_to_live_in_seconds
        .clamp(1, MAX_AUTHORIZATION_CODE_SECONDS);
    let code = AUTHORIZATION_CODE.generate(entropy)?;
    store
        .insert_grant(
            &code.hash(),
            &AuthorizationGrant {
                tenant_id: tenant.id,
                user_id: user.id,
                request,
                user_state,
                auth_time: now,
                expires_at: now.plus_secs(ttl),
            },
        )
        .await?;
    Ok((code, tenant.issuer))
}
