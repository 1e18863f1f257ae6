//! The local server's whole hosted flow, as a person tries it in a browser with no other tool:
//! `/demo/` (the demo application's relying party) sends the browser to the authorize page,
//! the email form sends a link, `/demo/inbox` shows the mail, the link's page completes the
//! login, and `/demo/callback` exchanges the code (PKCE) and shows the tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

mod support;

use support::Group;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A browser that keeps cookies by hand and does not follow redirects.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: Vec<String>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    html: String,
}

impl Browser {
    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let mut request = request;
        if !self.cookies.is_empty() {
            request = request.header("Cookie", self.cookies.join("; "));
        }
        let response = request.send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            self.cookies.push(pair);
        }
        Answer {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            html: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let path = path.strip_prefix(&self.base).unwrap_or(path).to_owned();
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(String, String)]) -> Answer {
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

/// The hidden and CSRF fields of the first form on a page.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.match_indices("<input type=\"hidden\" name=\"")
        .map(|(at, marker)| {
            let rest = &html[at + marker.len()..];
            let name = rest.split('"').next().unwrap().to_owned();
            let value = rest
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = value
                .replace("&amp;", "&")
                .replace("&#x2f;", "/")
                .replace("&#47;", "/")
                .replace("&quot;", "\"");
            (name, value)
        })
        .collect()
}

fn href_after(html: &str, marker: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"));
    let rest = &html[at..];
    let start = rest.find("href=\"").unwrap() + "href=\"".len();
    rest[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

#[tokio::test]
async fn a_person_signs_in_through_the_demo_relying_party_with_the_local_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("serve.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Group::spawn(
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&output)
        .unwrap()
        .contains("Listening on")
    {
        assert!(server.0.try_wait().unwrap().is_none(), "serve stopped");
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let printed = std::fs::read_to_string(&output).unwrap();
    let demo_url = format!("http://localhost:{port}/demo/");
    assert!(
        printed.contains(&demo_url),
        "serve prints the demo's URL: {printed}"
    );

    let mut browser = Browser {
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: format!("http://localhost:{port}"),
        cookies: Vec::new(),
    };
    let start = browser.get("/demo/").await;
    assert_eq!(start.status, 302);
    let authorize = browser.get(&start.location.unwrap()).await;
    assert_eq!(authorize.status, 200, "{}", authorize.html);
    assert!(
        authorize.html.contains("value=\"demo@example.com\""),
        "the login hint is filled in"
    );
    let mut form = hidden_fields(&authorize.html);
    form.push(("email".into(), "demo@example.com".into()));
    let asked = browser.post("/oauth2/passwordless", &form).await;
    assert_eq!(asked.status, 200, "{}", asked.html);

    let inbox = browser.get("/demo/inbox").await;
    assert_eq!(inbox.status, 200);
    let message = browser.get(&href_after(&inbox.html, "<li>")).await;
    assert_eq!(message.status, 200, "{}", message.html);
    let link = href_after(&message.html, "class=\"mail\"");
    assert!(link.contains("/oauth2/passwordless/"), "{link}");

    let shown = browser.get(&link).await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    let action = link
        .strip_prefix(&browser.base)
        .unwrap_or(&link)
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let done = browser.post(&action, &hidden_fields(&shown.html)).await;
    assert_eq!(done.status, 302, "{}", done.html);
    let callback = done.location.unwrap();
    assert!(callback.starts_with(&format!("http://localhost:{port}/demo/callback?code=")));
    let relying_party = browser.get(&callback).await;
    assert_eq!(relying_party.status, 200, "{}", relying_party.html);
    assert!(
        relying_party.html.contains("Signed in"),
        "{}",
        relying_party.html
    );
    assert!(
        relying_party.html.contains("demo@example.com"),
        "the id token names the user"
    );
}
