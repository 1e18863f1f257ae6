//! The hosted pages in a real browser, as a person tries the local server with no other tool:
//! headless Chromium driven through WebDriver (ChromeDriver) against `passwordless serve`,
//! which prints the demo relying party's URL. Three people sign in through that relying party
//! (`/demo/` sends the browser to the authorize page, `/demo/callback` exchanges the code with
//! PKCE and shows the tokens): one opens the emailed link from the local inbox
//! (`/demo/inbox`), one types the short code from the email, and one opens a link in a second
//! browser profile, which signs nobody in. Each page is saved as a
//! screenshot (under the test's temporary folder, or `PASSWORDLESS_SCREENSHOTS`), the README
//! shows committed copies.
//!
//! Needs Debian's `chromium` and `chromium-driver` (the test command installs them);
//! `PASSWORDLESS_CHROMIUM` and `PASSWORDLESS_CHROMEDRIVER` name other binaries.

use crate::support::{free_port, Group};
use base64::Engine;
use passwordless::domain::two_factor::AuthenticatorSecret;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Polls `ready` every 100 ms for up to 30 s.
async fn wait_until<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `passwordless serve` on a fresh folder: the embedded store, the outbox, the demo.
struct LocalServer {
    base: String,
    /// The demo's API key, as `serve` prints it once.
    api_key: String,
    _process: Group,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    async fn start() -> LocalServer {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("serve.log");
        let port = free_port();
        let process = Group::spawn(
            Command::new(env!("CARGO_BIN_EXE_passwordless"))
                .args(["serve", "--port", &port.to_string()])
                .current_dir(dir.path())
                .env_remove("PASSWORDLESS_STORE")
                .env_remove("PASSWORDLESS_OUTBOX")
                .env_remove("PASSWORDLESS_PUBLIC_URL")
                .env_remove("PASSWORDLESS_MAILER")
                .stdout(std::fs::File::create(&output).unwrap())
                .stderr(Stdio::null()),
        );
        wait_until("serve to listen", || async {
            std::fs::read_to_string(&output)
                .unwrap()
                .contains("Listening on")
        })
        .await;
        let base = format!("http://localhost:{port}");
        let printed = std::fs::read_to_string(&output).unwrap();
        assert!(
            printed.contains(&format!("{base}/demo/")),
            "serve prints the demo relying party's URL: {printed}"
        );
        let api_key = printed
            .lines()
            .find_map(|line| line.trim().strip_prefix("API key:"))
            .expect("serve prints the demo's API key")
            .trim()
            .to_owned();
        LocalServer {
            base,
            api_key,
            _process: process,
            _dir: dir,
        }
    }

    /// The newest message in the outbox, as the local inbox shows it (a phone reading mail).
    async fn newest_mail(&self) -> String {
        let inbox = reqwest::get(format!("{}/demo/inbox", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let first = href_after(&inbox, "<li>");
        reqwest::get(format!("{}{first}", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

fn href_after(html: &str, marker: &str) -> String {
    let rest = &html[html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"))..];
    let start = rest.find("href=\"").unwrap() + "href=\"".len();
    rest[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

/// ChromeDriver on a free loopback port.
struct Driver {
    base: String,
    http: reqwest::Client,
    _process: Group,
}

impl Driver {
    async fn start() -> Driver {
        let port = free_port();
        let binary = std::env::var("PASSWORDLESS_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        assert!(
            Path::new(&binary).exists(),
            "{binary} is missing: the test command installs Debian's chromium-driver"
        );
        let process = Group::spawn(
            Command::new(binary)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let driver = Driver {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _process: process,
        };
        wait_until("chromedriver to be ready", || async {
            match driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
            {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|status| status["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        driver
    }

    /// A browser with a profile of its own (cookies included) in `profile`.
    async fn browser(&self, profile: &Path) -> Browser {
        let chromium = std::env::var("PASSWORDLESS_CHROMIUM")
            .unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    // Nothing but the local server: no background traffic to the internet.
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=800,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let created = send(
            self.http.post(format!("{}/session", self.base)),
            Some(capabilities),
        )
        .await;
        let id = created["sessionId"].as_str().unwrap().to_owned();
        Browser {
            session: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
        }
    }
}

/// Sends one WebDriver command and answers its `value`; a WebDriver error fails the test.
async fn send(request: reqwest::RequestBuilder, body: Option<Value>) -> Value {
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert!(status.is_success(), "WebDriver: {answer}");
    answer["value"].clone()
}

/// One WebDriver session: a browser window.
struct Browser {
    session: String,
    http: reqwest::Client,
}

impl Browser {
    async fn get(&self, path: &str) -> Value {
        send(self.http.get(format!("{}/{path}", self.session)), None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        send(
            self.http.post(format!("{}/{path}", self.session)),
            Some(body),
        )
        .await
    }

    async fn open(&self, url: &str) {
        self.post("url", json!({ "url": url })).await;
    }

    async fn url(&self) -> String {
        self.get("url").await.as_str().unwrap().to_owned()
    }

    async fn source(&self) -> String {
        self.get("source").await.as_str().unwrap().to_owned()
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .post("element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn count(&self, css: &str) -> usize {
        self.post("elements", json!({"using": "css selector", "value": css}))
            .await
            .as_array()
            .unwrap()
            .len()
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.post(&format!("element/{element}/click"), json!({}))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.post(&format!("element/{element}/clear"), json!({}))
            .await;
        self.post(&format!("element/{element}/value"), json!({ "text": text }))
            .await;
    }

    /// Waits until the page's URL satisfies `ready`.
    async fn wait_for_url(&self, what: &str, ready: impl Fn(&str) -> bool) {
        wait_until(what, || async { ready(&self.url().await) }).await;
    }

    /// Saves what the window shows as `name`.png.
    async fn screenshot(&self, name: &str) {
        let png = self.get("screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let folder = screenshots();
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("{name}.png")), bytes).unwrap();
    }

    async fn quit(self) {
        send(self.http.delete(&self.session), None).await;
    }
}

fn screenshots() -> PathBuf {
    std::env::var_os("PASSWORDLESS_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"))
}

/// Opens the demo relying party, which sends the browser to the authorize page, and asks for
/// a link for the demo user (the login hint fills the field in).
async fn ask_for_a_link(browser: &Browser, server: &LocalServer, screenshot: Option<&str>) {
    browser.open(&format!("{}/demo/", server.base)).await;
    browser
        .wait_for_url("the authorize page", |url| {
            url.contains("/oauth2/authorize")
        })
        .await;
    let email = browser.element("input[type=email]").await;
    let filled = browser
        .get(&format!("element/{email}/property/value"))
        .await;
    assert_eq!(filled, "demo@example.com", "the login hint fills the field");
    if let Some(name) = screenshot {
        browser.screenshot(name).await;
    }
    browser.click("button[type=submit]").await;
    wait_until("the check-your-email page", || async {
        browser.source().await.contains("Check your email")
    })
    .await;
}

/// Waits for the demo relying party's callback page and checks it signed the user in.
async fn assert_signed_in(browser: &Browser, server: &LocalServer) {
    let callback = format!("{}/demo/callback?code=", server.base);
    browser
        .wait_for_url("the redirect to the relying party", |url| {
            url.starts_with(&callback)
        })
        .await;
    let page = browser.source().await;
    assert!(page.contains("Signed in"), "{page}");
    assert!(
        page.contains("demo@example.com"),
        "the id token names the user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_in_chromium_with_the_link_or_the_short_code_and_a_second_browser_cannot() {
    let server = LocalServer::start().await;
    let driver = Driver::start().await;
    let profiles = tempfile::tempdir().unwrap();

    // 1. The link, opened in the browser that asked (the local inbox stands in for webmail).
    let first = driver.browser(&profiles.path().join("first")).await;
    ask_for_a_link(&first, &server, Some("1-authorize")).await;
    first.screenshot("2-check-your-email").await;
    first.open(&format!("{}/demo/inbox", server.base)).await;
    first.click("li a").await;
    first
        .wait_for_url("the message", |url| url.contains("/demo/inbox/"))
        .await;
    first.screenshot("3-email").await;
    first.click(".mail a[href*='/oauth2/passwordless/']").await;
    first
        .wait_for_url("the link's page", |url| {
            url.contains("/oauth2/passwordless/")
        })
        .await;
    first.screenshot("4-link").await;
    first.click("button[type=submit]").await;
    assert_signed_in(&first, &server).await;
    first.screenshot("5-signed-in").await;
    first.quit().await;

    // 2. The short code, read on another device and typed where the person asked.
    let second = driver.browser(&profiles.path().join("second")).await;
    ask_for_a_link(&second, &server, None).await;
    let mail = server.newest_mail().await;
    let start = mail.find("<strong>").expect("a short code") + "<strong>".len();
    let short_code = mail[start..].split('<').next().unwrap().to_owned();
    assert!(
        short_code.chars().all(|c| c.is_ascii_digit()),
        "{short_code}"
    );
    second.type_into("input[name=code]", &short_code).await;
    second.screenshot("6-short-code").await;
    second
        .click("form[action='/oauth2/one-time-code'] button")
        .await;
    assert_signed_in(&second, &server).await;
    second.quit().await;

    // 3. A link opened in a second browser profile (a phone, a forwarded mail) signs nobody
    //    in there: no button to press, no redirect; the browser that asked still can.
    let asking = driver.browser(&profiles.path().join("asking")).await;
    ask_for_a_link(&asking, &server, None).await;
    let link = href_after(&server.newest_mail().await, "class=\"mail\"");
    let other = driver.browser(&profiles.path().join("other")).await;
    other.open(&link).await;
    // A fresh profile's first page can still be loading when navigation returns.
    wait_until("the other-browser page", || async {
        other.source().await.contains("browser where you asked")
    })
    .await;
    let page = other.source().await;
    assert_eq!(other.count("form").await, 0, "nothing to press: {page}");
    other.screenshot("7-other-browser").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        other.url().await.contains("/oauth2/passwordless/"),
        "no redirect to the relying party"
    );
    other.quit().await;
    asking.open(&link).await;
    asking.click("button[type=submit]").await;
    assert_signed_in(&asking, &server).await;
    asking.quit().await;
}

impl LocalServer {
    /// Calls the API with the demo's key.
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", &self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }
}

/// The code an authenticator app shows `steps` time steps from now (the server runs on the
/// real clock here).
fn authenticator_code(secret: &AuthenticatorSecret, steps: i64) -> String {
    let now = passwordless::ports::Clock::now(&passwordless::adapters::clock::SystemClock);
    secret.code_at(now.plus_secs(30 * steps))
}

/// Opens the newest link in the browser that asked and presses its button.
async fn open_newest_link(browser: &Browser, server: &LocalServer) {
    let link = href_after(&server.newest_mail().await, "class=\"mail\"");
    browser.open(&link).await;
    browser.click("button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_with_an_authenticator_app_passes_the_second_step_and_a_trusted_browser_skips_it()
{
    let server = LocalServer::start().await;
    // The demo user enables an authenticator app through the API (the test is the app).
    let found = server
        .api(
            reqwest::Method::GET,
            "/api/user?email=demo@example.com",
            None,
        )
        .await;
    let user = found["user"]["id"].as_str().unwrap().to_owned();
    let secret = server
        .api(reqwest::Method::GET, "/api/two-factor/secret", None)
        .await;
    let app_secret = AuthenticatorSecret::from_base64(secret["secret"].as_str().unwrap()).unwrap();
    server
        .api(
            reqwest::Method::POST,
            &format!("/api/user/two-factor/{user}"),
            Some(
                json!({"method": "authenticator", "secret": secret["secret"],
                        "code": authenticator_code(&app_secret, 0)}),
            ),
        )
        .await;
    let driver = Driver::start().await;
    let profiles = tempfile::tempdir().unwrap();
    let browser = driver.browser(&profiles.path().join("totp")).await;

    // The link alone no longer signs in: the two-factor page asks for the app's code.
    ask_for_a_link(&browser, &server, None).await;
    open_newest_link(&browser, &server).await;
    wait_until("the two-factor page", || async {
        browser.source().await.contains("One more step")
    })
    .await;
    assert!(browser.url().await.contains("/oauth2/passwordless/"));
    browser.type_into("input[name=code]", "000000").await;
    browser
        .click("form[action='/oauth2/two-factor'] button[type=submit]")
        .await;
    wait_until("the page again, with the problem", || async {
        browser.source().await.contains("That code is not right")
    })
    .await;
    browser
        .type_into("input[name=code]", &authenticator_code(&app_secret, 1))
        .await;
    browser.click("#trustComputer").await;
    browser.screenshot("8-two-factor").await;
    browser
        .click("form[action='/oauth2/two-factor'] button[type=submit]")
        .await;
    assert_signed_in(&browser, &server).await;

    // The same browser, trusted for 30 days, signs in next time with the link alone.
    ask_for_a_link(&browser, &server, None).await;
    open_newest_link(&browser, &server).await;
    assert_signed_in(&browser, &server).await;

    // Another browser is not trusted: it is asked again.
    let other = driver.browser(&profiles.path().join("untrusted")).await;
    ask_for_a_link(&other, &server, None).await;
    open_newest_link(&other, &server).await;
    wait_until("the two-factor page", || async {
        other.source().await.contains("One more step")
    })
    .await;
    other.quit().await;
    browser.quit().await;
}
