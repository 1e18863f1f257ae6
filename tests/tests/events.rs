//! Every sample API Gateway event in `events/` goes through `lambda_http`'s own deserializer and
//! the function's handler, against the local stores, and gets the status its file name promises
//! (`NAME.STATUS.json`). `${CODE}` in a body stands for a freshly started code.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

use passwordless::app::App;
use passwordless::config::{Config, MailerConfig, StoreConfig, VaultConfig};
use passwordless::domain::Secret;
use passwordless::flows::management::create_api_key;
use passwordless::http::lambda::handle_event;
use passwordless::http::routes::{routes_of, ROUTES};

const EVENTS_KEY: &str = "events-api-key-0123456789abcdef";

async fn app(dir: &tempfile::TempDir) -> App {
    // The local wiring: an SQLite file and an outbox folder in `dir`, the system clock.
    let config = Config {
        store: StoreConfig::Sqlite(dir.path().join("store.db")),
        mailer: MailerConfig::Outbox(dir.path().join("outbox")),
        vault: VaultConfig::File(dir.path().join("store.key")),
        public_url: "https://login.example".into(),
    };
    let app = App::from_config(&config).await.unwrap();
    passwordless_cli::demo::seed(&app).await.unwrap();
    create_api_key(
        app.store.as_ref(),
        app.entropy.as_ref(),
        &Secret::new(EVENTS_KEY),
        "events",
        None,
        None,
        passwordless::http::routes::is_permissible,
    )
    .await
    .unwrap();
    app
}

/// The function an event file is for: the longest function name its file name starts with.
fn function_of(file: &str) -> &'static str {
    ROUTES
        .iter()
        .map(|r| r.function)
        .filter(|f| file.starts_with(f))
        .max_by_key(|f| f.len())
        .expect("the file names a function")
}

async fn fresh_code(app: &App) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/passwordless-start.200.json"
    ))
    .unwrap();
    let response = handle_event(
        app,
        &routes_of("passwordless-start"),
        lambda_http::request::from_str(&text).unwrap(),
    )
    .await
    .unwrap();
    let lambda_http::Body::Text(body) = response.body() else {
        panic!("start answers JSON text")
    };
    serde_json::from_str::<serde_json::Value>(body).unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_sample_event_gets_the_status_its_name_promises() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let folder = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"));
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    let mut functions_seen = std::collections::BTreeSet::new();
    for name in names {
        let status: u16 = name
            .trim_end_matches(".json")
            .rsplit('.')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("NAME.STATUS.json");
        let mut text = std::fs::read_to_string(folder.join(&name)).unwrap();
        if text.contains("${CODE}") {
            text = text.replace("${CODE}", &fresh_code(&app).await);
        }
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"));
        let function = function_of(&name);
        functions_seen.insert(function);
        let response = handle_event(&app, &routes_of(function), request)
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "{name}: {:?}",
            response.body()
        );
    }
    let all: std::collections::BTreeSet<&str> = ROUTES.iter().map(|r| r.function).collect();
    assert_eq!(functions_seen, all, "every function has sample events");
}

#[tokio::test]
async fn a_function_answers_only_its_own_routes() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/passwordless-start.200.json"
    ))
    .unwrap();
    let response = handle_event(
        &app,
        &routes_of("passwordless-login"),
        lambda_http::request::from_str(&text).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 404);
}
