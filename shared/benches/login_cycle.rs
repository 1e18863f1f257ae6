//! The start + login cycle (RS256 and ES256), in process, through the HTTP edge, on the
//! embedded store; and the deprecated send-by-address form for a known and an unknown address,
//! whose times must match within noise (S9, H3).
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
    let made = handle(
        app,
        request(
            "/api/key/generate",
            Some(KEY),
            json!({"key": {"algorithm": "ES256", "name": "Bench ES256"}}),
        ),
    )
    .await;
    assert_eq!(made.status(), 200);
    let key: Value = serde_json::from_slice(made.body()).unwrap();
    let made = handle(
        app,
        request(
            "/api/application",
            Some(KEY),
            json!({"application": {"name": "Bench ES256", "roles": [{"name": "user"}],
                "passwordlessConfiguration": {"enabled": true},
                "loginConfiguration": {"generateRefreshTokens": true},
                "jwtConfiguration": {"enabled": true, "accessTokenKeyId": key["key"]["id"]}}}),
        ),
    )
    .await;
    assert_eq!(made.status(), 200);
    let application: Value = serde_json::from_slice(made.body()).unwrap();
    application["application"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn login_cycle(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
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
                        let started = handle(
                            &app,
                            request("/api/passwordless/start", Some(KEY), start.clone()),
                        )
                        .await;
                        assert_eq!(started.status(), 200);
                        let code: Value = serde_json::from_slice(started.body()).unwrap();
                        let login = handle(
                            &app,
                            request(
                                "/api/passwordless/login",
                                None,
                                json!({"code": code["code"]}),
                            ),
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
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

criterion_group!(benches, login_cycle, send_by_address);
criterion_main!(benches);
