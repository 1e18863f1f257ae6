//! Every sample API Gateway event in `events/` goes through `lambda_http`'s own deserializer and
//! the function's handler, against the local stores, and gets the status its file name promises
//! (`NAME.STATUS.json`). Their placeholders (`${PASSWORDLESS_API_KEY}`, the demo's application and
//! login id, `${CODE}` for a freshly started code) are filled in by `scripts/event.sh`, the
//! command the README gives for `cargo lambda invoke`.

use passwordless::app::App;
use passwordless::config::{Config, MailerConfig, StoreConfig, VaultConfig};
use passwordless::http::lambda::handle_event_of;
use passwordless::http::routes::ROUTES;
use passwordless_cli::demo::Demo;

const EVENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");

async fn app(dir: &tempfile::TempDir) -> (App, Demo) {
    // The local wiring: an SQLite file and an outbox folder in `dir`, the system clock.
    let config = Config {
        store: StoreConfig::Sqlite(dir.path().join("store.db")),
        mailer: MailerConfig::Outbox(dir.path().join("outbox")),
        vault: VaultConfig::File(dir.path().join("store.key")),
        public_url: "https://login.example".into(),
    };
    let app = App::from_config(&config).await.unwrap();
    let demo = passwordless_cli::demo::seed(&app).await.unwrap();
    (app, demo)
}

/// The event in `file` as `bash scripts/event.sh` prints it with the demo's settings (and
/// `code`, when given) in the environment.
fn filled(demo: &Demo, file: &str, code: Option<&str>) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/event.sh");
    let mut command = std::process::Command::new("bash");
    command
        .arg(script)
        .arg(format!("{EVENTS}/{file}"))
        .env("PASSWORDLESS_API_KEY", demo.api_key.expose())
        .env(
            "PASSWORDLESS_APPLICATION_ID",
            demo.application_id.to_string(),
        )
        .env("PASSWORDLESS_LOGIN_ID", demo.login_id)
        .env_remove("CODE");
    if let Some(code) = code {
        command.env("CODE", code);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
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

async fn fresh_code(app: &App, demo: &Demo) -> String {
    let text = filled(demo, "passwordless-start.200.json", None);
    let response = handle_event_of(
        app,
        "passwordless-start",
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
    let (app, demo) = app(&dir).await;
    let folder = std::path::Path::new(EVENTS);
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
        let raw = std::fs::read_to_string(folder.join(&name)).unwrap();
        let code = match raw.contains("${CODE}") {
            true => Some(fresh_code(&app, &demo).await),
            false => None,
        };
        let text = filled(&demo, &name, code.as_deref());
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"));
        let function = function_of(&name);
        functions_seen.insert(function);
        let response = handle_event_of(&app, function, request)
            .await
            .expect("a function of the table");
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

#[test]
fn every_route_has_a_sample_event() {
    let route_keys: std::collections::BTreeSet<String> = std::fs::read_dir(EVENTS)
        .unwrap()
        .map(|entry| {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let event: serde_json::Value = serde_json::from_str(&text).unwrap();
            event["routeKey"].as_str().unwrap().to_owned()
        })
        .collect();
    let missing: Vec<String> = ROUTES
        .iter()
        .map(|spec| format!("{} {}", spec.method, spec.path))
        .filter(|key| !route_keys.contains(key))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without a sample event: {missing:?}"
    );
}

#[tokio::test]
async fn a_function_answers_only_its_own_routes() {
    let dir = tempfile::tempdir().unwrap();
    let (app, demo) = app(&dir).await;
    let text = filled(&demo, "passwordless-start.200.json", None);
    let response = handle_event_of(
        &app,
        "passwordless-login",
        lambda_http::request::from_str(&text).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 404);
}

/// S30: a shipped file holds no key. Every API-key `authorization` header in `events/` is the
/// placeholder, so a sample works only with a key the reader's own store issued.
#[test]
fn the_sample_events_carry_no_api_key() {
    for entry in std::fs::read_dir(EVENTS).unwrap() {
        let path = entry.unwrap().path();
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(value) = event["headers"].get("authorization") else {
            continue;
        };
        // The only other credential-looking value is an unsigned (`alg: none`) token, which
        // signs nobody in: the userinfo sample that shows a forgery refused.
        let forged = value
            .as_str()
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| token.split('.').next())
            .and_then(|header| {
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                    .ok()
            })
            .is_some_and(|header| header == br#"{"alg":"none"}"#);
        assert!(
            value == "${PASSWORDLESS_API_KEY}" || forged,
            "{}: {value}",
            path.display()
        );
    }
}
