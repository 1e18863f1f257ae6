//! The start + login cycle, in process, through the HTTP edge, on the embedded store.
//! `cargo bench -p passwordless --bench login_cycle`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{json, Value};

use passwordless::app::App;
use passwordless::config::{Config, MailerConfig, StoreConfig};
use passwordless::domain::Secret;
use passwordless::flows::management::{create_api_key, create_application, register};
use passwordless::flows::tenancy::TenantScope;
use passwordless::http::{handle, HttpRequest};

const KEY: &str = "bench-key-0123456789abcdef";

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
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
        public_url: "http://localhost:9011".into(),
    };
    let app = App::from_config(&config).await.unwrap();
    let scope = TenantScope::default();
    let application = object(
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
    let body = object(
        json!({"user": {"email": "bench@example.com"}, "registration": {"applicationId": application.id, "roles": ["user"]}}),
    );
    register(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        &scope,
        None,
        body,
    )
    .await
    .unwrap();
    create_api_key(
        app.store.as_ref(),
        app.entropy.as_ref(),
        &Secret::new(KEY),
        "bench",
        None,
        None,
    )
    .await
    .unwrap();
    (app, application.id.to_string())
}

fn login_cycle(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (app, application_id) = runtime.block_on(app(&dir));
    let start = json!({"applicationId": application_id, "loginId": "bench@example.com"});

    c.bench_function(
        "start + login (embedded store, RS256, refresh token)",
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

criterion_group!(benches, login_cycle);
criterion_main!(benches);
