//! The hosted sign-in pages: the authorize page, the email form, the "check your email" page's
//! short code, and the magic link's page (`/oauth2/passwordless/{code}`).

use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::form::FormError;
use super::pages::authorization::{
    authorization_in, authorize_url, error_page, expired_page, AuthorizationFields,
};
use super::pages::{self, Cookies, Csrf, Language, PageFields};
use super::pages::{completion_ports, csrf_token, link_code, Look};
use super::{HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::oauth::{AuthorizationError, AuthorizationRequest};
use crate::domain::user::MAX_LOGIN_ID_LEN;
use crate::domain::{ApplicationId, Secret, SecretHash, Tenant};
use crate::flows::oauth::{
    self, AuthorizeError, CheckedAuthorization, CompletingBrowser, Completion, LinkView,
};
use crate::flows::passwordless::SendPorts;
use crate::flows::FlowError;

/// The language of a live link's pages: the request's (`locale`, then `Accept-Language`), then
/// the user's `preferredLanguages`, then English.
async fn link_language(
    app: &App,
    request: &HttpRequest,
    code: &Secret,
) -> Result<Language, ApiError> {
    if let Some(language) =
        Language::requested(PageFields::of_query(request).locale.as_deref(), request)
    {
        return Ok(language);
    }
    let preferred =
        oauth::link_owner_languages(app.store.as_ref(), app.clock.as_ref(), code).await?;
    Ok(Language::first_supported(&preferred).unwrap_or(Language::En))
}

fn binding(app: &App, request: &HttpRequest) -> Option<Secret> {
    Cookies::for_public_url(&app.links.0)
        .token(request, BINDING_COOKIE)
        .map(Secret::new)
}

/// The cookie that binds a browser to the login it asked for on the hosted page (S14).
const BINDING_COOKIE: &str = "binding";

/// How long the binding cookie lives: as long as the longest code (one-time codes, 10 min).
const BINDING_MAX_AGE_SECONDS: i64 = 600;

/// A page whose form posts back with a CSRF token: the token goes into `context` as `csrf`,
/// its cookie with the page (S15).
fn form_page(
    look: &Look,
    request: &HttpRequest,
    language: Language,
    status: StatusCode,
    name: &'static str,
    mut context: Value,
) -> Result<HttpResponse, ApiError> {
    let (token, cookie) = csrf_token(look.app, request)?;
    if let Value::Object(fields) = &mut context {
        fields.insert("csrf".to_owned(), json!(token));
    }
    Ok(look.page_in(
        language,
        status,
        name,
        context,
        cookie.into_iter().collect(),
    ))
}

/// The link's page with its Continue button.
/// The link's page: Continue, and the short code's field where the code wants it (`problem`
/// after a wrong or missing one).
fn continue_page(
    look: &Look,
    request: &HttpRequest,
    language: Language,
    code: &Secret,
    status: StatusCode,
    short_code: bool,
    problem: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let action = format!("/oauth2/passwordless/{}", code.expose());
    form_page(
        look,
        request,
        language,
        status,
        "link",
        json!({ "action": action, "ask_code": short_code, "problem": problem }),
    )
}

async fn link_view_page(
    app: &App,
    request: &HttpRequest,
    code: &Secret,
    (view, tenant, redirect_uri): (LinkView, Option<Tenant>, Option<String>),
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let look = Look::of(app, tenant.as_ref()).posting_to(redirect_uri.as_ref());
    match view {
        LinkView::Continue { short_code } => {
            let language = link_language(app, request, code).await?;
            let problem =
                (status == StatusCode::BAD_REQUEST).then(|| language.message("code_problem"));
            let problem = match status {
                StatusCode::TOO_MANY_REQUESTS => Some(language.message("code_held")),
                _ => problem,
            };
            continue_page(&look, request, language, code, status, short_code, problem)
        }
        LinkView::OtherBrowser { may_confirm } => {
            let language = link_language(app, request, code).await?;
            other_browser_page(&look, request, language, may_confirm.then_some(code))
        }
        LinkView::Expired => Ok(expired_page(app, request)),
    }
}

/// The page for a hosted-started login in a browser that did not ask: type the short code in
/// the browser that asked. With `confirmable` (the tenant allows it), also a form whose POST
/// finishes the login here once the person confirms.
fn other_browser_page(
    look: &Look,
    request: &HttpRequest,
    language: Language,
    confirmable: Option<&Secret>,
) -> Result<HttpResponse, ApiError> {
    let Some(code) = confirmable else {
        return Ok(look.page_in(
            language,
            StatusCode::OK,
            "other-browser",
            json!({}),
            Vec::new(),
        ));
    };
    let action = format!("/oauth2/passwordless/{}", code.expose());
    form_page(
        look,
        request,
        language,
        StatusCode::OK,
        "other-browser",
        json!({ "confirm_action": action }),
    )
}

/// The value of the `confirm` field the other-browser page's confirmation sends.
const CONFIRM_VALUE: &str = "other-browser";

/// The form of a page that takes a code: the link's page (its short code, or the other-browser
/// confirmation) and the "check your email" page. A repeated field leaves the form empty,
/// which the CSRF check refuses.
#[derive(Debug, Default, Deserialize)]
struct CodeForm {
    csrf: Option<String>,
    code: Option<String>,
    confirm: Option<String>,
}

impl CodeForm {
    /// The short code as typed, without the spaces and dashes people add.
    fn typed_code(&self) -> Option<String> {
        self.code
            .as_deref()
            .map(|c| c.trim().replace([' ', '-'], ""))
            .filter(|c| !c.is_empty() && c.len() <= 32)
    }
}

/// The authorize page's form (and the hint its query may carry).
#[derive(Debug, Default, Deserialize)]
struct EmailForm {
    csrf: Option<String>,
    email: Option<String>,
    login_hint: Option<String>,
}

/// `GET` and `HEAD`: a page, never a login (S14). Mail scanners fetch links; only the button's
/// POST completes one, and only in the browser that asked when the login began on the hosted
/// page.
pub(crate) async fn link_page(
    app: &App,
    request: &HttpRequest,
    raw: &str,
) -> Result<HttpResponse, ApiError> {
    let Some(code) = link_code(raw) else {
        return Ok(expired_page(app, request));
    };
    link_page_again(
        app,
        request,
        &code,
        binding(app, request).as_ref(),
        StatusCode::OK,
    )
    .await
}

/// The link's page as it stands now (looked at, nothing taken), with `status`.
async fn link_page_again(
    app: &App,
    request: &HttpRequest,
    code: &Secret,
    binding: Option<&Secret>,
    status: StatusCode,
) -> Result<HttpResponse, ApiError> {
    let view = oauth::view_link(app.store.as_ref(), app.clock.as_ref(), code, binding).await?;
    link_view_page(app, request, code, view, status).await
}

/// `POST` from the link's page: completes the login and redirects to the client with an
/// authorization code (S16: no code of ours in the final URL).
pub(crate) async fn complete_link(
    app: &App,
    request: &HttpRequest,
    raw: &str,
) -> Result<HttpResponse, ApiError> {
    let Some(code) = link_code(raw) else {
        return Ok(expired_page(app, request));
    };
    let binding = binding(app, request);
    let form: CodeForm = request.form().unwrap_or_default();
    if !Csrf::for_public_url(&app.links.0).holds(request, form.csrf.as_deref()) {
        // A stale or missing cookie: the same page again, with a token that will hold.
        return link_page_again(app, request, &code, binding.as_ref(), StatusCode::FORBIDDEN).await;
    }
    let confirmed_here = form.confirm.as_deref() == Some(CONFIRM_VALUE);
    let typed = form.typed_code().map(Secret::new);
    let fields = PageFields::of_form(request);
    let completion = oauth::complete_link(
        &completion_ports(app),
        &code,
        binding.as_ref(),
        typed.as_ref(),
        confirmed_here,
        completing_browser(app, request, &fields),
    )
    .await?;
    Ok(match completion {
        Completion::Redirect(location) => pages::redirect(&location),
        Completion::Expired => expired_page(app, request),
        Completion::OtherBrowser => {
            link_page_again(app, request, &code, binding.as_ref(), StatusCode::OK).await?
        }
        Completion::Refused(reason) => {
            error_page(app, request, &PageFields::of_query(request), &reason)
        }
        // An API-started code that wants its short code: asked again while it lives (N16).
        Completion::WrongOneTimeCode | Completion::SourceHeld => {
            let status = match completion {
                Completion::SourceHeld => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::BAD_REQUEST,
            };
            link_page_again(app, request, &code, binding.as_ref(), status).await?
        }
        Completion::TwoFactor(ahead) => {
            super::pages::two_factor::first_page(app, request, &fields, &ahead).await?
        }
    })
}

/// The browser a completion comes from: its address and the language it asks for (the form's
/// `locale`, the link's, then `Accept-Language`).
fn completing_browser(app: &App, request: &HttpRequest, form: &PageFields) -> CompletingBrowser {
    let locale = form
        .locale
        .clone()
        .or_else(|| PageFields::of_query(request).locale);
    CompletingBrowser {
        ip_address: request.source_ip.map(|ip| ip.to_string()),
        locale: Language::requested(locale.as_deref(), request).map(|l| l.tag().to_owned()),
        two_factor_trust: super::pages::trust_cookie(app, request).map(|id| Secret::new(id).hash()),
    }
}

/// The cookie naming the pending login's code by its hash (hex), for the short-code form.
const PENDING_COOKIE: &str = "pending";

/// The "check your email" page, with the short-code form.
fn check_email_page(
    look: &Look,
    request: &HttpRequest,
    fields: &PageFields,
    status: StatusCode,
    problem: Option<&str>,
    mut cookies: Vec<String>,
) -> Result<HttpResponse, ApiError> {
    let (token, csrf_cookie) = csrf_token(look.app, request)?;
    cookies.extend(csrf_cookie);
    let context = json!({
        "csrf": token,
        "locale": fields.locale,
        "client_id": fields.client_id,
        "problem": problem,
    });
    Ok(look.page(request, fields, status, "check-email", context, cookies))
}

/// The look of the pages after a request on the hosted page: its client's tenant's. The short
/// code's form names the client, so that a wrong code, a dead login and an unknown address
/// all answer in the same look (S9).
pub(super) async fn look_of_client<'a>(
    app: &'a App,
    fields: &PageFields,
) -> Result<Look<'a>, ApiError> {
    let Some(client) = fields.client_id.as_deref().and_then(ApplicationId::parse) else {
        return Ok(Look::builtin(app));
    };
    let Some(application) = app
        .store
        .application(client)
        .await
        .map_err(FlowError::from)?
    else {
        return Ok(Look::builtin(app));
    };
    let tenant = app
        .store
        .tenant(application.tenant_id)
        .await
        .map_err(FlowError::from)?;
    Ok(Look::of(app, tenant.as_ref())
        .posting_to(&application.oauth_configuration.authorized_redirect_urls))
}

/// `POST /oauth2/one-time-code`: the short code typed into the browser that asked (ours).
pub(crate) async fn complete_one_time_code(
    app: &App,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let fields = PageFields::of_form(request);
    let form: CodeForm = request.form().unwrap_or_default();
    let look = look_of_client(app, &fields).await?;
    if !Csrf::for_public_url(&app.links.0).holds(request, form.csrf.as_deref()) {
        return check_email_page(
            &look,
            request,
            &fields,
            StatusCode::FORBIDDEN,
            None,
            Vec::new(),
        );
    }
    let cookies = Cookies::for_public_url(&app.links.0);
    let pending = cookies
        .value(request, PENDING_COOKIE, 64)
        .and_then(|hex| SecretHash::from_hex(&hex));
    let typed = form.typed_code();
    let words = fields.language(request);
    // One answer for a missing or wrong code, a dead login and a decoy (S9).
    let not_right = || {
        check_email_page(
            &look,
            request,
            &fields,
            StatusCode::BAD_REQUEST,
            Some(words.message("code_problem")),
            Vec::new(),
        )
    };
    let (Some(pending), Some(typed)) = (pending, typed) else {
        return not_right();
    };
    let completion = oauth::complete_with_one_time_code(
        &completion_ports(app),
        &pending,
        binding(app, request).as_ref(),
        &Secret::new(typed),
        completing_browser(app, request, &fields),
    )
    .await?;
    match completion {
        Completion::Redirect(location) => Ok(pages::redirect(&location)),
        Completion::WrongOneTimeCode | Completion::Expired | Completion::OtherBrowser => {
            not_right()
        }
        // Whatever the address, a source past its share of wrong codes waits (S33).
        Completion::SourceHeld => check_email_page(
            &look,
            request,
            &fields,
            StatusCode::TOO_MANY_REQUESTS,
            Some(words.message("code_held")),
            Vec::new(),
        ),
        Completion::Refused(reason) => Ok(error_page(app, request, &fields, &reason)),
        Completion::TwoFactor(ahead) => {
            super::pages::two_factor::first_page(app, request, &fields, &ahead).await
        }
    }
}

/// The authorize page with its form: the authorization request rides along in hidden fields.
fn authorize_page(
    look: &Look,
    request: &HttpRequest,
    (fields, form): (&PageFields, &EmailForm),
    authorization: &AuthorizationRequest,
    status: StatusCode,
    problem: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let (token, cookie) = csrf_token(look.app, request)?;
    let mut hidden: Vec<(String, String)> = authorization
        .parameters()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    if let Some(locale) = &fields.locale {
        hidden.push(("locale".to_owned(), locale.clone()));
    }
    let context = json!({
        "csrf": token,
        "hidden": hidden,
        "login_hint": form.login_hint.as_deref().or(form.email.as_deref()).unwrap_or(""),
        "problem": problem,
    });
    Ok(look.page(
        request,
        fields,
        status,
        "authorize",
        context,
        cookie.into_iter().collect(),
    ))
}

/// The authorization request in a query or form, checked against its application (S17).
async fn checked_authorization(
    app: &App,
    fields: Result<AuthorizationFields, FormError>,
) -> Result<CheckedAuthorization, AuthorizeError> {
    let authorization = authorization_in(fields)?.ok_or(AuthorizationError::InvalidClient)?;
    oauth::check_authorization(app.store.as_ref(), authorization).await
}

/// The look of the pages of a checked authorization request: its tenant's, whose forms may
/// end at its redirect URI.
fn look_of<'a>(app: &'a App, checked: &CheckedAuthorization) -> Look<'a> {
    Look::of(app, checked.tenant()).posting_to([&checked.request().redirect_uri])
}

/// The authorize request's parameters: a GET's query or a POST's form (OpenID Connect Core
/// 3.1.2.1: the authorization endpoint takes both).
fn authorize_parameters<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, FormError> {
    match request.method {
        http::Method::POST => request.form(),
        _ => request.query(),
    }
}

/// `GET` and `POST /oauth2/authorize`: one email field, "Email me a login link".
pub async fn authorize(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let query: PageFields = authorize_parameters(request).unwrap_or_default();
    let hint: EmailForm = authorize_parameters(request).unwrap_or_default();
    match checked_authorization(app, authorize_parameters(request)).await {
        Ok(checked) => authorize_page(
            &look_of(app, &checked),
            request,
            (&query, &hint),
            checked.request(),
            StatusCode::OK,
            None,
        ),
        Err(AuthorizeError::Refused(refusal)) => Ok(error_page(app, request, &query, &refusal)),
        Err(AuthorizeError::Flow(error)) => Err(error.into()),
    }
}

/// `POST /oauth2/passwordless`: asks for a link. Known and unknown addresses get the same page,
/// status, binding cookie and time (S9); limits hold per address and source before anything is
/// written (S8, S31).
pub(crate) async fn request_link(
    app: &App,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let fields = PageFields::of_form(request);
    let form: EmailForm = request.form().unwrap_or_default();
    let checked = match checked_authorization(app, request.form()).await {
        Ok(checked) => checked,
        Err(AuthorizeError::Refused(refusal)) => {
            return Ok(error_page(app, request, &fields, &refusal))
        }
        Err(AuthorizeError::Flow(error)) => return Err(error.into()),
    };
    let (authorization, look) = (checked.request(), look_of(app, &checked));
    if !Csrf::for_public_url(&app.links.0).holds(request, form.csrf.as_deref()) {
        return authorize_page(
            &look,
            request,
            (&fields, &form),
            authorization,
            StatusCode::FORBIDDEN,
            None,
        );
    }
    let email = form.email.as_deref().map(str::trim).unwrap_or("");
    if !plausible_email(email) {
        let problem = fields.language(request).message("email_problem");
        return authorize_page(
            &look,
            request,
            (&fields, &form),
            authorization,
            StatusCode::BAD_REQUEST,
            Some(problem),
        );
    }
    let ports = SendPorts {
        store: app.store.as_ref(),
        mailer: app.mailer.as_ref(),
        clock: app.clock.as_ref(),
        entropy: app.entropy.as_ref(),
        links: &app.links,
        pacer: &app.send_pacer,
    };
    let source = request.source_ip.map(|ip| ip.to_string());
    match oauth::request_link(&ports, &checked, email, source.as_deref()).await {
        Ok(pending) => {
            let cookies = Cookies::for_public_url(&app.links.0);
            let set = vec![
                cookies.set(
                    BINDING_COOKIE,
                    pending.binding.expose(),
                    Some(BINDING_MAX_AGE_SECONDS),
                ),
                cookies.set(
                    PENDING_COOKIE,
                    &pending.code_hash.to_hex(),
                    Some(BINDING_MAX_AGE_SECONDS),
                ),
            ];
            check_email_page(&look, request, &fields, StatusCode::OK, None, set)
        }
        Err(FlowError::RateLimited) => {
            let retry = authorize_url(authorization, fields.locale.as_deref());
            Ok(look.page(
                request,
                &fields,
                StatusCode::TOO_MANY_REQUESTS,
                "limited",
                json!({"retry": retry}),
                Vec::new(),
            ))
        }
        Err(other) => Err(other.into()),
    }
}

/// An address worth looking up: one `@` with something on both sides, no spaces or controls,
/// within the login id limit. Anything that passes and names no user is treated like any
/// unknown address (S9).
fn plausible_email(email: &str) -> bool {
    email.len() <= MAX_LOGIN_ID_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
}
