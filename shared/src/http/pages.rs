//! Server-rendered hosted pages: built-in MiniJinja templates compiled once per process and run
//! bounded like email templates (S29), messages in English, French and German, the headers S15
//! asks of every page, and CSRF tokens bound to a cookie.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use minijinja::{AutoEscape, Environment};
use serde_json::{json, Value};
use std::sync::OnceLock;

use super::{HttpRequest, HttpResponse};
use crate::domain::email::render_bounded;
use crate::domain::secret::secrets_equal;
use crate::ports::Entropy;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("pages/layout.html")),
    ("link.html", include_str!("pages/link.html")),
    ("expired.html", include_str!("pages/expired.html")),
    ("error.html", include_str!("pages/error.html")),
];

/// The page templates, parsed once per process.
fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_fuel(Some(crate::domain::email::TEMPLATE_FUEL));
        for (name, source) in TEMPLATES {
            // The built-in templates are checked by a unit test; a broken one renders as the
            // plain error page below instead of taking the process down.
            let _ = env.add_template(name, source);
        }
        env
    })
}

/// The languages pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    En,
    Fr,
    De,
}

impl Language {
    fn tag(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
            Language::De => "de",
        }
    }

    fn of_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Language::En),
            "fr" => Some(Language::Fr),
            "de" => Some(Language::De),
            _ => None,
        }
    }

    /// The page language: the `locale` parameter, then `Accept-Language` by preference, then
    /// English.
    pub fn choose(locale: Option<&str>, request: &HttpRequest) -> Self {
        if let Some(language) = locale.and_then(Self::of_tag) {
            return language;
        }
        let accept = request
            .headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut offers: Vec<(f32, usize, Language)> = accept
            .split(',')
            .take(32)
            .enumerate()
            .filter_map(|(order, item)| {
                let mut parts = item.split(';');
                let language = Self::of_tag(parts.next()?)?;
                let quality = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (quality > 0.0).then_some((quality, order, language))
            })
            .collect();
        offers.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        offers.first().map_or(Language::En, |o| o.2)
    }

    fn messages(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Language::En => EN,
            Language::Fr => FR,
            Language::De => DE,
        }
    }
}

const EN: &[(&str, &str)] = &[
    ("link_title", "Sign in"),
    ("link_heading", "Sign in"),
    ("link_text", "You opened a sign-in link. Continue to finish signing in."),
    ("continue", "Continue"),
    ("link_note", "If you did not ask to sign in, close this page: nothing happens until you continue."),
    ("expired_title", "Link expired"),
    ("expired_heading", "This link has expired"),
    ("expired_text", "Sign-in links work once and only for a few minutes. Ask for a new one to sign in."),
    ("send_new_link", "Send me a new link"),
    ("error_title", "Sign-in problem"),
    ("error_heading", "This sign-in request cannot be used"),
    ("error_text", "The application that sent you here made a request this service cannot accept. Go back to the application and try again."),
];

const FR: &[(&str, &str)] = &[
    ("link_title", "Connexion"),
    ("link_heading", "Connexion"),
    ("link_text", "Vous avez ouvert un lien de connexion. Continuez pour terminer la connexion."),
    ("continue", "Continuer"),
    ("link_note", "Si vous n’avez pas demandé à vous connecter, fermez cette page : rien ne se passe tant que vous ne continuez pas."),
    ("expired_title", "Lien expiré"),
    ("expired_heading", "Ce lien a expiré"),
    ("expired_text", "Les liens de connexion ne servent qu’une fois et pendant quelques minutes. Demandez-en un nouveau pour vous connecter."),
    ("send_new_link", "M’envoyer un nouveau lien"),
    ("error_title", "Problème de connexion"),
    ("error_heading", "Cette demande de connexion n’est pas utilisable"),
    ("error_text", "L’application qui vous a envoyé ici a fait une demande que ce service ne peut pas accepter. Revenez à l’application et réessayez."),
];

const DE: &[(&str, &str)] = &[
    ("link_title", "Anmelden"),
    ("link_heading", "Anmelden"),
    ("link_text", "Sie haben einen Anmeldelink geöffnet. Fahren Sie fort, um die Anmeldung abzuschließen."),
    ("continue", "Weiter"),
    ("link_note", "Wenn Sie keine Anmeldung angefordert haben, schließen Sie diese Seite: Ohne „Weiter“ geschieht nichts."),
    ("expired_title", "Link abgelaufen"),
    ("expired_heading", "Dieser Link ist abgelaufen"),
    ("expired_text", "Anmeldelinks gelten nur einmal und nur wenige Minuten. Fordern Sie einen neuen an, um sich anzumelden."),
    ("send_new_link", "Neuen Link senden"),
    ("error_title", "Anmeldeproblem"),
    ("error_heading", "Diese Anmeldeanfrage kann nicht verwendet werden"),
    ("error_text", "Die Anwendung, die Sie hierher geschickt hat, hat eine Anfrage gestellt, die dieser Dienst nicht annehmen kann. Kehren Sie zur Anwendung zurück und versuchen Sie es erneut."),
];

/// One page to render: a built-in template, its status and what it shows.
pub struct Page {
    pub status: StatusCode,
    /// `link`, `expired` or `error`.
    pub name: &'static str,
    pub language: Language,
    pub context: Value,
    /// `Set-Cookie` values to send with the page (a fresh CSRF cookie).
    pub cookies: Vec<String>,
}

/// Renders a page with the S15 headers. A style nonce per response keeps the CSP strict while
/// the page carries its own CSS inline (no external request, works without JavaScript).
pub fn render(page: Page, entropy: &dyn Entropy) -> HttpResponse {
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
    let html = environment()
        .get_template(&format!("{}.html", page.name))
        .map_err(|e| e.to_string())
        .and_then(|template| render_bounded(&template, &context).map_err(|e| e.to_string()));
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
    secure_page_headers(headers, &nonce);
    for cookie in page.cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(http::header::SET_COOKIE, value);
        }
    }
    response
}

/// S15: no referrer, no caching, no sniffing, no framing, and nothing but the page's own
/// inline style may load.
fn secure_page_headers(headers: &mut http::HeaderMap, style_nonce: &str) {
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{style_nonce}'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
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
    secure_page_headers(headers, "");
    response
}

/// `bytes` random bytes as base64url.
fn random_token(entropy: &dyn Entropy, bytes: usize) -> Option<String> {
    let mut buffer = vec![0u8; bytes];
    entropy.fill(&mut buffer).ok()?;
    Some(crate::domain::signing::b64url(&buffer))
}

/// CSRF protection for page forms (S15): a random token in a cookie the page sets, repeated
/// in a hidden field; a POST must bring both, equal. Cross-site forms cannot read the cookie
/// nor (with `__Host-` on https) plant one.
pub struct Csrf {
    https: bool,
}

const CSRF_TOKEN_LEN: usize = 43;

impl Csrf {
    pub fn for_public_url(public_url: &str) -> Self {
        Self {
            https: public_url.starts_with("https://"),
        }
    }

    fn cookie_name(&self) -> &'static str {
        match self.https {
            true => "__Host-passwordless-csrf",
            false => "passwordless-csrf",
        }
    }

    fn cookie_token(&self, request: &HttpRequest) -> Option<String> {
        cookie(request, self.cookie_name())
            .filter(|v| v.len() == CSRF_TOKEN_LEN)
            .filter(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    /// The token for a form, and the cookie to set when the browser has none yet.
    pub fn token(
        &self,
        request: &HttpRequest,
        entropy: &dyn Entropy,
    ) -> Option<(String, Option<String>)> {
        if let Some(existing) = self.cookie_token(request) {
            return Some((existing, None));
        }
        let token = random_token(entropy, 32)?;
        let attributes = match self.https {
            true => "; Path=/; Secure; HttpOnly; SameSite=Lax",
            false => "; Path=/; HttpOnly; SameSite=Lax",
        };
        let set = format!("{}={token}{attributes}", self.cookie_name());
        Some((token, Some(set)))
    }

    /// Whether a POST's form token matches its cookie (constant time, S3).
    pub fn holds(&self, request: &HttpRequest, form_token: Option<&str>) -> bool {
        match (self.cookie_token(request), form_token) {
            (Some(cookie), Some(form)) => secrets_equal(cookie.as_bytes(), form.as_bytes()),
            _ => false,
        }
    }
}

/// The value of the first cookie called `name`.
pub fn cookie(request: &HttpRequest, name: &str) -> Option<String> {
    request
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The pairs of a form-encoded body or a query string.
pub fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .take(64)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn form_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_page_compiles_and_renders_in_every_language() {
        for (name, source) in TEMPLATES {
            Environment::new().add_template(name, source).unwrap();
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
                let html = render_bounded(
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
        let token = "a".repeat(CSRF_TOKEN_LEN);
        let request = request_with("cookie", &format!("x=1; __Host-passwordless-csrf={token}"));
        assert!(csrf.holds(&request, Some(&token)));
        assert!(!csrf.holds(&request, Some(&"b".repeat(CSRF_TOKEN_LEN))));
        assert!(!csrf.holds(&request, None));
        // Over https only the __Host- cookie counts: a sibling domain cannot plant it.
        let planted = request_with("cookie", &format!("passwordless-csrf={token}"));
        assert!(!csrf.holds(&planted, Some(&token)));
    }
}
