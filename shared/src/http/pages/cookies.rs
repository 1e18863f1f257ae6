//! The hosted pages' cookies (`__Host-` prefixed over https) and the CSRF token bound to one.

use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::{Instant, Secret};
use crate::http::HttpRequest;

use crate::domain::secret::secrets_equal;
use crate::ports::Entropy;

/// `bytes` random bytes as base64url.
pub(super) fn random_token(entropy: &dyn Entropy, bytes: usize) -> Option<String> {
    let mut buffer = vec![0u8; bytes];
    entropy.fill(&mut buffer).ok()?;
    Some(crate::domain::signing::b64url(&buffer))
}

/// The pages' cookies (S15): HttpOnly, SameSite=Lax, and `__Host-` prefixed and Secure when
/// the public URL is https; on a plain-http public URL (local development only) the same
/// without prefix and Secure, which clients drop over http.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cookies {
    https: bool,
}

impl Cookies {
    pub(crate) fn for_public_url(public_url: &str) -> Self {
        Self {
            https: public_url.starts_with("https://"),
        }
    }

    fn name(&self, base: &str) -> String {
        match self.https {
            true => format!("__Host-passwordless-{base}"),
            false => format!("passwordless-{base}"),
        }
    }

    /// The cookie's value when it looks like a token this server makes (base64url, 43
    /// characters). Over https only the `__Host-` name counts: a sibling domain cannot plant it.
    pub fn token(&self, request: &HttpRequest, base: &str) -> Option<String> {
        self.value(request, base, TOKEN_LEN)
    }

    /// The cookie's value when it is `len` characters of base64url or hex.
    pub fn value(&self, request: &HttpRequest, base: &str, len: usize) -> Option<String> {
        cookie(request, &self.name(base))
            .filter(|v| v.len() == len)
            .filter(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    /// A `Set-Cookie` value; `max_age` in seconds, none for a session cookie.
    pub fn set(&self, base: &str, value: &str, max_age: Option<i64>) -> String {
        let mut cookie = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax",
            self.name(base)
        );
        if self.https {
            cookie.push_str("; Secure");
        }
        if let Some(seconds) = max_age {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        cookie
    }
}

/// Tokens in cookies: 32 random bytes as base64url.
pub(super) const TOKEN_LEN: usize = 43;

/// CSRF protection for page forms (S15): a random token in a cookie the page sets, repeated
/// in a hidden field; a POST must bring both, equal. Cross-site forms can read neither.
pub(crate) struct Csrf {
    cookies: Cookies,
}

impl Csrf {
    pub(crate) fn for_public_url(public_url: &str) -> Self {
        Self {
            cookies: Cookies::for_public_url(public_url),
        }
    }

    /// The token for a form, and the cookie to set when the browser has none yet.
    pub fn token(
        &self,
        request: &HttpRequest,
        entropy: &dyn Entropy,
    ) -> Option<(String, Option<String>)> {
        if let Some(existing) = self.cookies.token(request, "csrf") {
            return Some((existing, None));
        }
        let token = random_token(entropy, 32)?;
        let set = self.cookies.set("csrf", &token, None);
        Some((token, Some(set)))
    }

    /// Whether a POST's form token matches its cookie (constant time, S3).
    pub fn holds(&self, request: &HttpRequest, form_token: Option<&str>) -> bool {
        match (self.cookies.token(request, "csrf"), form_token) {
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

/// The trust cookie's name: FusionAuth's, `__Host-` prefixed over https (S15).
fn trust_cookie_name(app: &App) -> &'static str {
    if app.links.0.starts_with("https://") {
        "__Host-fusionauth.trust"
    } else {
        "fusionauth.trust"
    }
}

/// The `twoFactorTrustId` a browser carries in its trust cookie.
pub(crate) fn trust_cookie(app: &App, request: &HttpRequest) -> Option<String> {
    cookie(request, trust_cookie_name(app)).filter(|v| !v.is_empty() && v.len() <= MAX_SECRET_LEN)
}

/// The `Set-Cookie` that makes a browser trusted until `until`: HttpOnly, SameSite=Lax (the
/// hosted pages are reached by links from mail), Secure over https.
pub(crate) fn trust_set_cookie(
    app: &App,
    trust_id: &Secret,
    until: Instant,
    now: Instant,
) -> String {
    let max_age = (until.as_millis() - now.as_millis()).max(0) / 1000;
    let mut cookie = format!(
        "{}={}; Max-Age={max_age}; Path=/; SameSite=Lax; HttpOnly",
        trust_cookie_name(app),
        trust_id.expose()
    );
    if app.links.0.starts_with("https://") {
        cookie.push_str("; Secure");
    }
    cookie
}
