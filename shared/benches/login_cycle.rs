//! The start + login cycle (RS256 and ES256), in process, through the HTTP edge, on the
//! embedded store; the hosted pages' path (the link's page, Continue, the token endpoint); and
//! the deprecated send-by-address form for a known and an unknown address, whose times must
//! match within noise (S9, H3).
//! `cargo bench -p passwordless --bench login_cycle`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{json, Value};

use passwordless::app::App;
use passwordless::config::{Config, MailerConfig, StoreConfig, VaultConfig};
use passwordless::domain::Secret;
use passwordless::flows::management::{
    create_api_key, create_application, register, RegisterCommand,
};
use passwordless::flows::tenancy::TenantScope;
use passwordless::http::{handle, HttpRequest};

const KEY: &str = "bench-key-0123456789abcdef";

fn typed<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

const CALLBACK: &str = "https://app.example/callback";

fn browser_request(
    method: Method,
    path_and_query: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
    basic: Option<&str>,
) -> HttpRequest {
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (path_and_query.to_owned(), None),
    };
    let mut headers = HeaderMap::new();
    if let Some(cookie) = cookie {
        headers.insert("cookie", HeaderValue::from_str(cookie).unwrap());
    }
    if let Some(basic) = basic {
        headers.insert("authorization", HeaderValue::from_str(basic).unwrap());
    }
    let body = match form {
        Some(form) => {
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish()
        }
        None => String::new(),
    };
    HttpRequest {
        method,
        path,
        query,
        headers,
        body: Bytes::from(body),
        source_ip: None,
        request_id: "bench".into(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The JSON answer of an API request that must succeed.
async fn answer(app: &App, request: HttpRequest) -> Value {
    let response = handle(app, request).await;
    assert_eq!(response.status(), 200);
    serde_json::from_slice(response.body()).unwrap()
}

/// `POST path` with the bench's API key and `body`: its JSON answer.
async fn post(app: &App, path: &str, body: Value) -> Value {
    answer(app, request(path, Some(KEY), body)).await
}

/// The code of a login `start` (a start request's body) begins.
async fn started_code(app: &App, start: &Value) -> String {
    let body = post(app, "/api/passwordless/start", start.clone()).await;
    body["code"].as_str().unwrap().to_owned()
}

fn request(path: &str, key: Option<&str>, body: Value) -> HttpRequest {
    let mut headers = HeaderMap::new();
    if let Some(key) = key {
        headers.insert("authorization", HeaderValue::from_str(key).unwrap());
    }
    HttpRequest {
        method: Method::POST,
        path: path.to_owned(),
        query: None,
        headers,
        body: Bytes::from(body.to_string()),
        source_ip: None,
        request_id: "bench".into(),
    }
}

async fn app(dir: &tempfile::TempDir) -> (App, String) {
    // The local wiring: an SQLite file and an outbox folder in `dir`, the system clock.
    let config = Config {
        store: StoreConfig::Sqlite(dir.path().join("store.db")),
        mailer: MailerConfig::Outbox(dir.path().join("outbox")),
        vault: VaultConfig::File(dir.path().join("store.key")),
        public_url: "http://localhost:9011".into(),
    };
    let app = App::from_config(&config).await.unwrap();
    let scope = TenantScope::operator();
    let application = typed(
        json!({"name": "Bench", "passwordlessConfiguration": {"enabled": true}, "roles": [{"name": "user"}],
        "loginConfiguration": {"generateRefreshTokens": true}}),
    );
    let application = create_application(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        &scope,
        None,
        application,
    )
    .await
    .unwrap();
    let command = RegisterCommand {
        user: Some(typed(json!({"email": "bench@example.com"}))),
        registration: typed(json!({"applicationId": application.id, "roles": ["user"]})),
        skip_verification: false,
        skip_registration_verification: false,
    };
    register(&app.verification_ports(), &scope, None, command)
        .await
        .unwrap();
    create_api_key(
        app.store.as_ref(),
        app.entropy.as_ref(),
        app.clock.as_ref(),
        &Secret::new(KEY),
        "bench",
        None,
        None,
        passwordless::http::routes::is_permissible,
    )
    .await
    .unwrap();
    (app, application.id.to_string())
}

/// A second application whose tokens an ES256 key signs, made through the API.
async fn es256_application(app: &App) -> String {
    let key = post(
        app,
        "/api/key/generate",
        json!({"key": {"algorithm": "ES256", "name": "Bench ES256"}}),
    )
    .await;
    let application = post(
        app,
        "/api/application",
        json!({"application": {"name": "Bench ES256", "roles": [{"name": "user"}],
            "passwordlessConfiguration": {"enabled": true},
            "loginConfiguration": {"generateRefreshTokens": true},
            "jwtConfiguration": {"enabled": true, "accessTokenKeyId": key["key"]["id"]}}}),
    )
    .await;
    let id = application["application"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The bench user is registered for it too (a login to an application the user is not
    // registered for answers 202 and signs nothing).
    let mut found = request("/api/user", Some(KEY), Value::Null);
    found.method = Method::GET;
    found.body = Bytes::new();
    found.query = Some("email=bench@example.com".into());
    let user = answer(app, found).await;
    post(
        app,
        &format!(
            "/api/user/registration/{}",
            user["user"]["id"].as_str().unwrap()
        ),
        json!({"registration": {"applicationId": id, "roles": ["user"]}}),
    )
    .await;
    id
}

fn login_cycle(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (app, application_id) = runtime.block_on(app(&dir));
    let es256_application_id = runtime.block_on(es256_application(&app));
    let start = json!({"applicationId": application_id, "loginId": "bench@example.com"});

    for (algorithm, application) in [("RS256", &application_id), ("ES256", &es256_application_id)] {
        let start = json!({"applicationId": application, "loginId": "bench@example.com"});
        c.bench_function(
            &format!("start + login (embedded store, {algorithm}, refresh token)"),
            |b| {
                b.iter(|| {
                    runtime.block_on(async {
                        let code = started_code(&app, &start).await;
                        let login = handle(
                            &app,
                            request("/api/passwordless/login", None, json!({"code": code})),
                        )
                        .await;
                        assert_eq!(login.status(), 200);
                    })
                })
            },
        );
    }

    c.bench_function("start only", |b| {
        b.iter(|| {
            runtime.block_on(async {
                assert_eq!(
                    handle(
                        &app,
                        request("/api/passwordless/start", Some(KEY), start.clone())
                    )
                    .await
                    .status(),
                    200
                )
            })
        })
    });
}

/// The same request for a user's address and for an address nobody has: one starts and sends a
/// code, the other finds nobody and is paced to the first's running mean. The two lines of the
/// report are the oracle an attacker would read; they should agree within noise.
fn send_by_address(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (app, application_id) = runtime.block_on(async {
        let (app, application_id) = app(&dir).await;
        // The rate limit would answer 429 after five sends: off for the measurement.
        let scope = TenantScope::operator();
        let tenant_id = passwordless::domain::tenant::DEFAULT_TENANT_ID;
        let mut tenant =
            passwordless::flows::management::tenant(app.store.as_ref(), &scope, tenant_id)
                .await
                .unwrap();
        tenant.rate_limit_configuration.send_passwordless.enabled = false;
        passwordless::flows::management::update_tenant(
            app.store.as_ref(),
            app.clock.as_ref(),
            &scope,
            tenant_id,
            tenant,
        )
        .await
        .unwrap();
        (app, application_id)
    });
    let send = |login_id: &str| {
        let body = json!({"applicationId": application_id, "loginId": login_id});
        let app = &app;
        let runtime = &runtime;
        move || {
            runtime.block_on(async {
                let response = handle(
                    app,
                    request("/api/passwordless/send", Some(KEY), body.clone()),
                )
                .await;
                assert_eq!(response.status(), 200);
                assert!(response.body().is_empty());
            })
        }
    };
    // Teach the pacer what a real send costs here before anything is measured.
    let warm = send("bench@example.com");
    for _ in 0..50 {
        warm();
    }
    let mut group = c.benchmark_group("send by address (deprecated form, outbox)");
    let known = send("bench@example.com");
    group.bench_function("a user's address", |b| b.iter(&known));
    let unknown = send("nobody@example.com");
    group.bench_function("an unknown address", |b| b.iter(&unknown));
    group.finish();
}

/// An application with an OAuth client for the hosted pages: its id and `Basic` credentials.
async fn oauth_client(app: &App) -> (String, String) {
    let application = post(
        app,
        "/api/application",
        json!({"application": {"name": "Bench pages", "roles": [{"name": "user", "isDefault": true}],
            "passwordlessConfiguration": {"enabled": true},
            "loginConfiguration": {"generateRefreshTokens": true},
            "oauthConfiguration": {"authorizedRedirectURLs": [CALLBACK]}}}),
    )
    .await;
    let id = application["application"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = application["application"]["oauthConfiguration"]["clientSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    post(
        app,
        "/api/user/registration",
        json!({"user": {"email": "pages@example.com"}, "registration": {"applicationId": id},
            "skipVerification": true}),
    )
    .await;
    use base64::Engine;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    (id, basic)
}

/// The magic link's way in, after the code exists: the link's page (which sets the CSRF
/// cookie), Continue (which completes the login and redirects with an authorization code) and
/// the token endpoint (which signs the access and id tokens).
fn hosted_pages(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = runtime.block_on(app(&dir));
    let (client_id, basic) = runtime.block_on(oauth_client(&app));
    let state = json!({"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code",
        "scope": "openid offline_access", "state": "bench"});
    let start = json!({"applicationId": client_id, "loginId": "pages@example.com", "state": state});
    c.bench_function(
        "start + link page + Continue + token endpoint (RS256)",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let code = started_code(&app, &start).await;
                    let link = format!("/oauth2/passwordless/{code}");
                    let page =
                        handle(&app, browser_request(Method::GET, &link, None, None, None)).await;
                    assert_eq!(page.status(), 200);
                    let cookie = page.headers()["set-cookie"]
                        .to_str()
                        .unwrap()
                        .split(';')
                        .next()
                        .unwrap()
                        .to_owned();
                    let html = std::str::from_utf8(page.body()).unwrap();
                    let csrf = html
                        .split("name=\"csrf\" value=\"")
                        .nth(1)
                        .unwrap()
                        .split('"')
                        .next()
                        .unwrap()
                        .to_owned();
                    let done = handle(
                        &app,
                        browser_request(
                            Method::POST,
                            &link,
                            Some(&cookie),
                            Some(&[("csrf", &csrf)]),
                            None,
                        ),
                    )
                    .await;
                    assert_eq!(done.status(), 302);
                    let location = done.headers()["location"].to_str().unwrap().to_owned();
                    let authorization_code =
                        form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
                            .find(|(name, _)| name == "code")
                            .unwrap()
                            .1
                            .into_owned();
                    let tokens = handle(
                        &app,
                        browser_request(
                            Method::POST,
                            "/oauth2/token",
                            None,
                            Some(&[
                                ("grant_type", "authorization_code"),
                                ("code", &authorization_code),
                                ("redirect_uri", CALLBACK),
                            ]),
                            Some(&basic),
                        ),
                    )
                    .await;
                    assert_eq!(tokens.status(), 200);
                })
            })
        },
    );
}

criterion_group!(benches, login_cycle, hosted_pages, send_by_address);
criterion_main!(benches);
