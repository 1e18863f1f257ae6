//! Local development only: a tiny relying party for the demo application (`/demo/` starts an
//! authorization-code grant with PKCE, `/demo/callback` exchanges the code and shows what it
//! got) and an inbox for the outbox folder (`/demo/inbox`), so a person tries the whole flow in
//! a browser with no other tool. The local server serves these only on the embedded store with
//! the outbox mailer; no Lambda function has them.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use std::path::PathBuf;

use passwordless::domain::oauth::verifier_matches;
use passwordless::domain::signing::b64url;
use passwordless::domain::{ApplicationId, Secret};
use passwordless::flows::oauth::{
    self, ClientCredentials, CodeGrant, Grant, TokenError, TokenRequest,
};
use passwordless::http::pages::{cookie, redirect};
use passwordless::http::HttpRequest;
use passwordless::App;

/// Whether the demo pages are served on an address (S37): their inbox shows every live link
/// and short code in the outbox, so they are for this machine only unless the operator says
/// otherwise.
pub fn served_on(bind: std::net::IpAddr, exposed_on_purpose: bool) -> bool {
    bind.is_loopback() || exposed_on_purpose
}

/// What the demo pages need to know.
#[derive(Debug, Clone)]
pub struct DemoPages {
    pub outbox: PathBuf,
    pub client_id: ApplicationId,
    pub public_url: String,
    pub login_hint: String,
}

const PKCE_COOKIE: &str = "passwordless-demo";

impl DemoPages {
    pub fn redirect_uri(&self) -> String {
        format!("{}/demo/callback", self.public_url.trim_end_matches('/'))
    }

    /// Answers a `/demo/…` request, or `None` for any other path.
    pub async fn answer(&self, app: &App, request: &HttpRequest) -> Option<http::Response<Bytes>> {
        let path = request.path.strip_prefix("/demo")?;
        Some(match path {
            "" | "/" => self.start(app),
            "/callback" => self.callback(app, request).await,
            "/inbox" => self.inbox(),
            other => match other.strip_prefix("/inbox/") {
                Some(id) => self.message(id),
                None => page(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "<p>No such demo page.</p>",
                ),
            },
        })
    }

    /// Starts a grant: a fresh state and PKCE verifier in a cookie, then the authorize page.
    fn start(&self, app: &App) -> http::Response<Bytes> {
        let mut random = [0u8; 48];
        if app.entropy.fill(&mut random).is_err() {
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "<p>No randomness.</p>",
            );
        }
        let verifier = b64url(&random[..32]);
        let state = b64url(&random[32..]);
        let challenge = b64url(&<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
        debug_assert!(verifier_matches(&verifier, &challenge));
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id.to_string())
            .append_pair("redirect_uri", &self.redirect_uri())
            .append_pair("response_type", "code")
            .append_pair("scope", "openid offline_access")
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("login_hint", &self.login_hint)
            .finish();
        let mut response = redirect(&format!("/oauth2/authorize?{query}"));
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{PKCE_COOKIE}={verifier}.{state}; Path=/demo; HttpOnly; SameSite=Lax; Max-Age=900"
        )) {
            response
                .headers_mut()
                .insert(http::header::SET_COOKIE, value);
        }
        response
    }

    /// The redirect URI: checks the state, exchanges the code at the token flow with the
    /// verifier, and shows the code, the tokens and the id token's claims.
    async fn callback(&self, app: &App, request: &HttpRequest) -> http::Response<Bytes> {
        let query: CallbackQuery = request.query().unwrap_or_default();
        let remembered = cookie(request, PKCE_COOKIE);
        let (verifier, state) = remembered
            .as_deref()
            .and_then(|c| c.split_once('.'))
            .unwrap_or(("", ""));
        let (Some(code), Some(returned_state)) = (query.code.as_deref(), query.state.as_deref())
        else {
            return page(
                StatusCode::BAD_REQUEST,
                "No code",
                "<p>The callback got no code.</p>",
            );
        };
        if returned_state != state {
            return page(
                StatusCode::BAD_REQUEST,
                "State mismatch",
                "<p>The state does not match the one this browser started with. <a href=\"/demo/\">Start again</a>.</p>",
            );
        }
        let exchanged = oauth::exchange(
            app.store.as_ref(),
            app.key_vault.as_ref(),
            app.clock.as_ref(),
            app.entropy.as_ref(),
            TokenRequest {
                grant: Grant::AuthorizationCode(CodeGrant {
                    code: Secret::new(code),
                    redirect_uri: self.redirect_uri(),
                    code_verifier: Some(verifier.to_owned()),
                }),
                client: ClientCredentials {
                    id: Some(self.client_id.to_string()),
                    secret: None,
                },
            },
        )
        .await;
        let body = match exchanged {
            Ok(tokens) => {
                let claims = |token: &str| {
                    token
                        .split('.')
                        .nth(1)
                        .and_then(|p| {
                            base64::Engine::decode(
                                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                                p,
                            )
                            .ok()
                        })
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                        .and_then(|v| serde_json::to_string_pretty(&v).ok())
                        .unwrap_or_default()
                };
                format!(
                    "<p>Signed in. The authorization code <code>{}</code> ({}) was exchanged at the token endpoint with the PKCE verifier.</p>\
                     <h2>Access token claims</h2><pre>{}</pre><h2>ID token claims</h2><pre>{}</pre>\
                     <p>A refresh token came too: {}.</p><p><a href=\"/demo/\">Sign in again</a> · <a href=\"/demo/inbox\">Inbox</a></p>",
                    escape(code),
                    escape(query.user_state.as_deref().unwrap_or("")),
                    escape(&claims(&tokens.access_token)),
                    escape(&claims(tokens.id_token.as_deref().unwrap_or(""))),
                    if tokens.refresh_token.is_some() { "yes" } else { "no" },
                )
            }
            Err(TokenError::Protocol(error)) => format!(
                "<p>The token endpoint refused the code: <code>{}</code> ({}).</p><p><a href=\"/demo/\">Start again</a></p>",
                escape(error.error),
                escape(error.description)
            ),
            Err(e) => format!("<p>The exchange failed: {}</p>", escape(&e.to_string())),
        };
        page(StatusCode::OK, "Demo relying party", &body)
    }

    /// The outbox, newest first.
    fn inbox(&self) -> http::Response<Bytes> {
        let mut names: Vec<String> = std::fs::read_dir(&self.outbox)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.reverse();
        let mut rows = String::new();
        for name in names.iter().take(100) {
            let id = name.trim_end_matches(".eml");
            let (subject, to) = std::fs::read(self.outbox.join(name))
                .ok()
                .and_then(|bytes| {
                    let message = mail_parser::MessageParser::default().parse(&bytes)?;
                    let to = message
                        .to()
                        .and_then(|a| a.first())
                        .and_then(|a| a.address())
                        .unwrap_or("")
                        .to_owned();
                    Some((message.subject().unwrap_or("").to_owned(), to))
                })
                .unwrap_or_default();
            rows.push_str(&format!(
                "<li><a href=\"/demo/inbox/{}\">{}</a> to {}</li>",
                escape(id),
                escape(&subject),
                escape(&to)
            ));
        }
        if rows.is_empty() {
            rows.push_str("<li>No mail yet.</li>");
        }
        page(
            StatusCode::OK,
            "Inbox",
            &format!(
                "<p>Every message the local server sent, newest first (from {}).</p><ul>{rows}</ul>",
                escape(&self.outbox.display().to_string())
            ),
        )
    }

    /// One message: its HTML part as the mail reader would show it, links clickable.
    fn message(&self, id: &str) -> http::Response<Bytes> {
        let safe = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let message = safe
            .then(|| std::fs::read(self.outbox.join(format!("{id}.eml"))).ok())
            .flatten();
        let Some(bytes) = message else {
            return page(
                StatusCode::NOT_FOUND,
                "Not found",
                "<p>No such message.</p>",
            );
        };
        let Some(parsed) = mail_parser::MessageParser::default().parse(&bytes) else {
            return page(
                StatusCode::NOT_FOUND,
                "Not found",
                "<p>Unreadable message.</p>",
            );
        };
        let html = parsed
            .body_html(0)
            .map(|h| h.into_owned())
            .unwrap_or_default();
        let text = parsed
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default();
        page(
            StatusCode::OK,
            parsed.subject().unwrap_or("Message"),
            &format!(
                "<p><a href=\"/demo/inbox\">Inbox</a></p><div class=\"mail\">{html}</div><h2>Text part</h2><pre>{}</pre>",
                escape(&text)
            ),
        )
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(status: StatusCode, title: &str, body: &str) -> http::Response<Bytes> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>body{{font:1rem/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}pre{{white-space:pre-wrap;background:#f6f8fa;padding:1rem;border-radius:8px}}.mail{{border:1px solid #d0d7de;border-radius:8px;padding:1rem}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>",
        title = escape(title)
    );
    let mut response = http::Response::new(Bytes::from(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The demo's own pages and mail bodies run no script.
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n9_s37_the_demo_inbox_is_served_on_loopback_and_elsewhere_only_when_asked() {
        for loopback in ["127.0.0.1", "::1", "127.0.0.2"] {
            assert!(served_on(loopback.parse().unwrap(), false), "{loopback}");
        }
        for public in ["0.0.0.0", "::", "192.0.2.10", "2001:db8::1"] {
            assert!(!served_on(public.parse().unwrap(), false), "{public}");
            assert!(served_on(public.parse().unwrap(), true), "{public}");
        }
    }
}

/// What the authorization server sends to the demo's redirect URI.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    user_state: Option<String>,
}
