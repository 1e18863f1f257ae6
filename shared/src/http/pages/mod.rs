//! Server-rendered hosted pages: built-in MiniJinja templates compiled once per process and run
//! bounded like email templates (S29), messages in English, French and German, the headers S15
//! asks of every page, and CSRF tokens bound to a cookie. The languages are `language.rs`, the
//! cookies and CSRF tokens `cookies.rs`; the second step's and the verification links' pages
//! have files of their own.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use minijinja::{AutoEscape, Environment};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::errors::ApiError;
use super::{HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::render;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::{Secret, Tenant, TenantId};
use crate::flows::oauth::CompletionPorts;
use crate::ports::Entropy;

pub(crate) mod authorization;
mod cookies;
mod language;
mod secrets;
pub mod two_factor;
pub mod verify;

pub use cookies::cookie;
use cookies::random_token;
#[cfg(test)]
use cookies::TOKEN_LEN;
pub(crate) use cookies::{trust_cookie, trust_set_cookie, Cookies, Csrf};
pub use language::Language;
#[cfg(test)]
use language::{DE, EN, FR};

/// One page to render: a built-in template, its status and what it shows.
pub struct Page {
    /// The templates to render with.
    pub set: PageSet,
    pub status: StatusCode,
    /// `link`, `expired` or `error`.
    pub name: &'static str,
    pub language: Language,
    pub context: Value,
    /// `Set-Cookie` values to send with the page (a fresh CSRF cookie).
    pub cookies: Vec<String>,
    /// Origins besides this one a form on the page may end up at: the client's redirect URIs,
    /// where a completed sign-in is redirected (CSP `form-action`, S34).
    pub form_origins: Vec<String>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("layout.html")),
    ("link.html", include_str!("link.html")),
    ("expired.html", include_str!("expired.html")),
    ("error.html", include_str!("error.html")),
    ("server-error.html", include_str!("server-error.html")),
    ("authorize.html", include_str!("authorize.html")),
    ("check-email.html", include_str!("check-email.html")),
    ("other-browser.html", include_str!("other-browser.html")),
    ("limited.html", include_str!("limited.html")),
    ("signed-out.html", include_str!("signed-out.html")),
    ("verify.html", include_str!("verify.html")),
    ("two-factor.html", include_str!("two-factor.html")),
    ("verified.html", include_str!("verified.html")),
    ("verify-expired.html", include_str!("verify-expired.html")),
];

/// The page templates, parsed once per process.
fn environment() -> &'static Environment<'static> {
    builtin_set().0.as_ref()
}

fn builtin_set() -> &'static PageSet {
    static BUILTIN: OnceLock<PageSet> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let mut env = page_environment();
        add_builtin_templates(&mut env);
        PageSet(Arc::new(env))
    })
}

/// An environment with the pages' settings: HTML escaping everywhere, rendering bounded in
/// steps, output and memory like email templates (S29, S32).
fn page_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    render::install(&mut env);
    env
}

/// Adds the built-in templates, prepared for bounded rendering once per process (every
/// tenant's page set starts from them).
fn add_builtin_templates(env: &mut Environment<'static>) {
    static PREPARED: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();
    let prepared = PREPARED.get_or_init(|| {
        TEMPLATES
            .iter()
            // The built-in templates are checked by a unit test; a broken one renders as
            // the plain error page instead of taking the process down.
            .filter_map(|(name, source)| Some((*name, render::prepare(source).ok()?)))
            .collect()
    });
    for (name, source) in prepared {
        let _ = env.add_template_owned(*name, source.clone());
    }
}

/// The templates pages render with: the built-in ones, or a tenant's on top of them. Compiled
/// once per tenant version and shared (a warm Lambda or the local server renders from memory).
#[derive(Clone)]
pub struct PageSet(Arc<Environment<'static>>);

/// Tenants whose compiled page templates are kept; beyond, the cache starts over.
const PAGE_SET_CACHE_ENTRIES: usize = 256;

impl PageSet {
    pub fn builtin() -> PageSet {
        builtin_set().clone()
    }

    /// The tenant's pages: its `hostedPagesConfiguration.templates` over the built-in ones.
    pub(crate) fn for_tenant(tenant: &Tenant) -> PageSet {
        let given = tenant.hosted_pages_configuration.templates.given();
        if given.is_empty() {
            return PageSet::builtin();
        }
        // Keyed by the sources themselves, not the tenant's version: two stores in one
        // process (tests, or a tenant restored with an old update instant) may hold the same
        // tenant id and instant with other templates.
        type Cache = Mutex<HashMap<(TenantId, [u8; 32]), PageSet>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Cache::default);
        let mut fingerprint = Sha256::new();
        for (page, _, source) in &given {
            for part in [
                page.as_bytes(),
                &source.len().to_be_bytes(),
                source.as_bytes(),
            ] {
                fingerprint.update(part);
            }
        }
        let key = (tenant.id, <[u8; 32]>::from(fingerprint.finalize()));
        if let Some(set) = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return set.clone();
        }
        let mut env = page_environment();
        add_builtin_templates(&mut env);
        for (page, _, source) in given {
            // Checked when the tenant was saved (S29); one that fails now keeps the built-in.
            let prepared = render::prepare(source).map_err(|e| e.to_string());
            if let Err(e) = prepared.and_then(|prepared| {
                env.add_template_owned(format!("{page}.html"), prepared)
                    .map_err(|e| e.to_string())
            }) {
                tracing::warn!(tenant_id = %tenant.id, page, reason = %e, "a tenant page template does not compile");
            }
        }
        let set = PageSet(Arc::new(env));
        let mut cache = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= PAGE_SET_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, set.clone());
        set
    }

    fn is_builtin(&self) -> bool {
        Arc::ptr_eq(&self.0, &builtin_set().0)
    }
}

/// Renders a page with the S15 headers. A style nonce per response keeps the CSP strict while
/// the page carries its own CSS inline (no external request, works without JavaScript).
/// The page for a server error on a hosted page: 500, in the browser's language, with the
/// request id the logs carry (S25).
pub(crate) fn server_error(
    request: &HttpRequest,
    request_id: &str,
    entropy: &dyn Entropy,
) -> HttpResponse {
    render(
        Page {
            set: PageSet::builtin(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
            name: "server-error",
            language: Language::choose(None, request),
            context: json!({ "request_id": request_id }),
            cookies: Vec::new(),
            form_origins: Vec::new(),
        },
        entropy,
    )
}

pub(crate) fn render(page: Page, entropy: &dyn Entropy) -> HttpResponse {
    let nonce = random_token(entropy, 16).unwrap_or_default();
    let messages: serde_json::Map<String, Value> = page
        .language
        .messages()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    let title = messages
        .get(&format!("{}_title", page.name))
        .cloned()
        .unwrap_or_default();
    let mut context =
        json!({"t": messages, "lang": page.language.tag(), "nonce": nonce, "title": title});
    if let (Value::Object(into), Value::Object(extra)) = (&mut context, page.context) {
        into.extend(extra);
    }
    let render_with = |env: &Environment<'static>, context: &Value| {
        env.get_template(&format!("{}.html", page.name))
            .map_err(|e| e.to_string())
            .and_then(|template| render::render(&template, context).map_err(|e| e.to_string()))
    };
    // A tenant's template renders with markers for the page's secrets, put back only where
    // they belong (S34); one that fails at render time (out of fuel, say) or misplaces a
    // secret leaves the page usable: the built-in one stands in.
    let tenant_page = match page.set.is_builtin() {
        true => None,
        false => {
            let mut masked_context = context.clone();
            let masked = secrets::mask(&mut masked_context);
            match render_with(page.set.0.as_ref(), &masked_context) {
                Ok(html) => {
                    let placed = masked.unmask(&html);
                    if placed.is_none() {
                        tracing::warn!(page = page.name, "a tenant page template placed a page secret where it does not belong, or posts off this origin");
                    }
                    placed
                }
                Err(reason) => {
                    tracing::warn!(page = page.name, reason = %reason, "a tenant page template failed to render");
                    None
                }
            }
        }
    };
    let html = match tenant_page {
        Some(html) => Ok(html),
        None => render_with(environment(), &context),
    };
    let (status, html) = match html {
        Ok(html) => (page.status, html),
        Err(reason) => {
            tracing::error!(page = page.name, reason = %reason, "a built-in page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned(),
            )
        }
    };
    let mut response = http::Response::new(Bytes::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    secure_page_headers(headers, &nonce, &page.form_origins);
    super::append_set_cookies(&mut response, page.cookies);
    response
}

/// S15: no referrer, no caching, no sniffing, no framing, and nothing but the page's own
/// inline style may load; forms post only here, or end at the client's origins (S34).
fn secure_page_headers(headers: &mut http::HeaderMap, style_nonce: &str, form_origins: &[String]) {
    let mut form_action = String::from("'self'");
    for origin in form_origins {
        if !form_action.split(' ').any(|o| o == origin) {
            form_action.push(' ');
            form_action.push_str(origin);
        }
    }
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{style_nonce}'; img-src 'self' data:; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(http::header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
}

/// A redirect after a completed page action, with the page headers (no referrer: the URL of
/// the page that redirects carries the link's code).
pub fn redirect(location: &str) -> HttpResponse {
    let mut response = http::Response::new(Bytes::new());
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(http::header::LOCATION, location);
    }
    secure_page_headers(headers, "", &[]);
    response
}

/// What any hosted page's form or query may say about the page itself: the language asked
/// for (FusionAuth's `locale` parameter) and the client whose look it takes.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageFields {
    pub locale: Option<String>,
    pub client_id: Option<String>,
}

impl PageFields {
    /// The page's fields in a form body; a repeated one leaves both unsaid, which only costs
    /// the page its language and look.
    pub(crate) fn of_form(request: &HttpRequest) -> Self {
        request.form().unwrap_or_default()
    }

    /// The page's fields in the query string, by the same rule.
    pub(crate) fn of_query(request: &HttpRequest) -> Self {
        request.query().unwrap_or_default()
    }

    /// The form's fields, each falling back to the query's (a link's `locale` rides in its
    /// query, a page's form may repeat it).
    pub(crate) fn of_form_then_query(request: &HttpRequest) -> Self {
        let form = Self::of_form(request);
        let query = Self::of_query(request);
        PageFields {
            locale: form.locale.or(query.locale),
            client_id: form.client_id.or(query.client_id),
        }
    }

    pub fn language(&self, request: &HttpRequest) -> Language {
        Language::choose(self.locale.as_deref(), request)
    }
}

/// A link code as it may appear in a path: what the generators make (URL-safe base64,
/// letters, digits), within the secret length limit. Anything else is an expired link (S10).
/// Verification ids in their links are read the same way.
pub(crate) fn link_code(raw: &str) -> Option<Secret> {
    let well_formed = !raw.is_empty()
        && raw.len() <= MAX_SECRET_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| Secret::new(raw))
}

/// Where pages render: the app (for randomness) and the templates of the tenant they belong
/// to, or the built-in ones when no tenant is known.
pub(crate) struct Look<'a> {
    pub(crate) app: &'a App,
    set: PageSet,
    /// The client's origins a form on these pages may end up at (CSP `form-action`, S34).
    form_origins: Vec<String>,
}

impl<'a> Look<'a> {
    pub(crate) fn builtin(app: &'a App) -> Self {
        Look {
            app,
            set: PageSet::builtin(),
            form_origins: Vec::new(),
        }
    }

    pub(crate) fn of(app: &'a App, tenant: Option<&Tenant>) -> Self {
        Look {
            app,
            set: tenant.map_or_else(PageSet::builtin, PageSet::for_tenant),
            form_origins: Vec::new(),
        }
    }

    /// These pages' forms may end in a redirect to `redirect_uris` (a completed sign-in).
    pub(crate) fn posting_to<'u>(
        mut self,
        redirect_uris: impl IntoIterator<Item = &'u String>,
    ) -> Self {
        self.form_origins = redirect_uris
            .into_iter()
            .filter_map(|uri| crate::domain::oauth::form_action_source(uri))
            .collect();
        self
    }

    pub(crate) fn page(
        &self,
        request: &HttpRequest,
        fields: &PageFields,
        status: StatusCode,
        name: &'static str,
        context: Value,
        cookies: Vec<String>,
    ) -> HttpResponse {
        self.page_in(fields.language(request), status, name, context, cookies)
    }

    pub(crate) fn page_in(
        &self,
        language: Language,
        status: StatusCode,
        name: &'static str,
        context: Value,
        cookies: Vec<String>,
    ) -> HttpResponse {
        render(
            Page {
                set: self.set.clone(),
                status,
                name,
                language,
                context,
                cookies,
                form_origins: self.form_origins.clone(),
            },
            self.app.entropy.as_ref(),
        )
    }
}

pub(crate) fn csrf_token(
    app: &App,
    request: &HttpRequest,
) -> Result<(String, Option<String>), ApiError> {
    Csrf::for_public_url(&app.links.0)
        .token(request, app.entropy.as_ref())
        .ok_or_else(|| ApiError::internal("no randomness for a CSRF token"))
}

pub(crate) fn completion_ports(app: &App) -> CompletionPorts<'_, dyn crate::ports::Store> {
    CompletionPorts {
        store: app.store.as_ref(),
        vault: app.key_vault.as_ref(),
        clock: app.clock.as_ref(),
        entropy: app.entropy.as_ref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_page_compiles_and_renders_in_every_language() {
        for (name, source) in TEMPLATES {
            Environment::new()
                .add_template_owned(*name, render::prepare(source).unwrap())
                .unwrap();
        }
        let env = environment();
        for (name, _) in TEMPLATES.iter().filter(|(n, _)| *n != "layout.html") {
            let template = env.get_template(name).unwrap();
            for language in [Language::En, Language::Fr, Language::De] {
                let messages: serde_json::Map<String, Value> = language
                    .messages()
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), json!(v)))
                    .collect();
                let html = render::render(
                    &template,
                    &json!({"t": messages, "lang": language.tag(), "nonce": "n", "title": "t", "action": "/a", "csrf": "c", "detail": "d", "retry": "/r"}),
                )
                .unwrap();
                assert!(
                    html.contains(&format!("lang=\"{}\"", language.tag())),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn every_language_has_every_message() {
        fn keys(m: &'static [(&'static str, &'static str)]) -> Vec<&'static str> {
            m.iter().map(|(k, _)| *k).collect()
        }
        assert_eq!(keys(EN), keys(FR));
        assert_eq!(keys(EN), keys(DE));
    }

    fn request_with(header: &str, value: &str) -> HttpRequest {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::HeaderName::from_bytes(header.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        HttpRequest {
            method: http::Method::GET,
            path: "/".into(),
            query: None,
            headers,
            body: Bytes::new(),
            source_ip: None,
            request_id: "r".into(),
        }
    }

    #[test]
    fn the_locale_parameter_wins_then_accept_language_by_quality() {
        let request = request_with("accept-language", "it, de;q=0.5, fr-CH;q=0.8");
        assert_eq!(Language::choose(None, &request), Language::Fr);
        assert_eq!(Language::choose(Some("de_DE"), &request), Language::De);
        assert_eq!(Language::choose(Some("xx"), &request), Language::Fr);
        let none = request_with("accept-language", "it, es;q=0.5");
        assert_eq!(Language::choose(None, &none), Language::En);
    }

    #[test]
    fn s15_a_form_token_must_equal_its_cookie() {
        let csrf = Csrf::for_public_url("https://login.example");
        let token = "a".repeat(TOKEN_LEN);
        let request = request_with("cookie", &format!("x=1; __Host-passwordless-csrf={token}"));
        assert!(csrf.holds(&request, Some(&token)));
        assert!(!csrf.holds(&request, Some(&"b".repeat(TOKEN_LEN))));
        assert!(!csrf.holds(&request, None));
        // Over https only the __Host- cookie counts: a sibling domain cannot plant it.
        let planted = request_with("cookie", &format!("passwordless-csrf={token}"));
        assert!(!csrf.holds(&planted, Some(&token)));
    }
}
