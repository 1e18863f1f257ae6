//! The README's local Lambda loop, as a newcomer runs it: `serve` seeds a fresh embedded store
//! (and writes `demo.env`), `bash scripts/lambda-watch.sh` builds the four functions and starts
//! `cargo lambda watch`, and `cargo lambda invoke --data-ascii "$(bash scripts/event.sh FILE)"`
//! replays every sample event in `events/` against the real function binaries: the start → send
//! → login sequence first, with the code the start answered, then every other file. Each
//! answers the status its name promises (`NAME.STATUS.json`). One function is also called
//! through the function URL the watcher serves, with a plain HTTP client.
//!
//! cargo-lambda comes from the test command's Python environment (beside
//! `PASSWORDLESS_TEST_PYTHON`, or `.venv`).

use crate::support::{free_port, serve_until_listening, Group};

use passwordless::http::routes::ROUTES;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const REPOSITORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A cold build of the functions on a two-core machine takes about six minutes; this leaves
/// room for a busy one.
const FIRST_BUILD: Duration = Duration::from_secs(30 * 60);

/// The folder holding `cargo-lambda`: the test command's virtual environment.
fn tools() -> PathBuf {
    let python = std::env::var("PASSWORDLESS_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(REPOSITORY).join(".venv/bin/python"));
    let bin = python.parent().unwrap().to_path_buf();
    assert!(
        bin.join("cargo-lambda").exists(),
        "no cargo-lambda beside {}: run `bash scripts/test.sh`, which installs it, or set PASSWORDLESS_TEST_PYTHON",
        python.display()
    );
    bin
}

/// The settings the store's paths need, for every process of the loop: the README's defaults
/// are `.passwordless/…` in the clone; here a fresh folder.
fn store_env(dir: &Path) -> [(&'static str, String); 2] {
    [
        (
            "PASSWORDLESS_STORE",
            format!("sqlite:{}", dir.join("store.db").display()),
        ),
        (
            "PASSWORDLESS_OUTBOX",
            dir.join("outbox").display().to_string(),
        ),
    ]
}

/// Seeds the store the documented way: the first `serve` on an empty store seeds the demo and
/// writes `demo.env` beside it. Its output, redirected to a file, carries no colour codes.
fn seed_with_serve(dir: &Path) -> BTreeMap<String, String> {
    let (serve, output) = serve_until_listening(
        Command::new(env!("CARGO_BIN_EXE_passwordless"))
            .envs(store_env(dir))
            .env_remove("NO_COLOR"),
        &dir.join("serve.log"),
    );
    drop(serve);
    assert!(output.contains("Seeded a demo"), "{output}");
    assert!(output.contains("INFO"), "serve logs: {output}");
    assert!(
        !output.contains('\u{1b}'),
        "colour codes in a log file: {output:?}"
    );
    std::fs::read_to_string(dir.join("demo.env"))
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The function an event is for: the longest function name its file name starts with.
fn function_of(file: &str) -> &'static str {
    ROUTES
        .iter()
        .map(|r| r.function)
        .filter(|f| file.starts_with(f))
        .max_by_key(|f| f.len())
        .expect("the file names a function")
}

fn promised_status(file: &str) -> u16 {
    file.trim_end_matches(".json")
        .rsplit('.')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("NAME.STATUS.json")
}

struct Loop {
    port: u16,
    path: String,
    env: BTreeMap<String, String>,
}

impl Loop {
    /// The README's invoke line, through bash, with the demo's settings (and `CODE`) exported.
    fn invoke(&self, file: &str, code: Option<&str>) -> Value {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(r#"cargo lambda invoke -A 127.0.0.1 -P "$PORT" "$FUNCTION" --data-ascii "$(bash scripts/event.sh "events/$FILE")""#)
            .current_dir(REPOSITORY)
            .env("PATH", &self.path)
            .env("PORT", self.port.to_string())
            .env("FUNCTION", function_of(file))
            .env("FILE", file)
            .envs(&self.env)
            .env_remove("CODE");
        if let Some(code) = code {
            command.env("CODE", code);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{file}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{file}: {e}: {}", String::from_utf8_lossy(&output.stdout)))
    }

    /// Invokes `file` and checks the status its name promises; answers the response's body.
    fn replay(&self, file: &str, code: Option<&str>) -> Value {
        let response = self.invoke(file, code);
        assert_eq!(
            response["statusCode"].as_u64(),
            Some(promised_status(file).into()),
            "{file}: {response}"
        );
        let json = response["headers"]["content-type"]
            .as_str()
            .is_some_and(|t| t.starts_with("application/json"));
        match response["body"].as_str() {
            Some(body) if json => serde_json::from_str(body).unwrap(),
            Some(page) => Value::String(page.to_owned()),
            None => Value::Null,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_lambda_loop_answers_every_sample_event() {
    let tools = tools();
    let dir = tempfile::tempdir().unwrap();
    let env = seed_with_serve(dir.path());
    let port = free_port();
    let path = format!(
        "{}:{}",
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let watch_log = dir.path().join("watch.log");
    let mut watcher = Group::spawn(
        Command::new("bash")
            .arg("scripts/lambda-watch.sh")
            .current_dir(REPOSITORY)
            .env("PATH", &path)
            .env("PASSWORDLESS_LAMBDA_PORT", port.to_string())
            .envs(store_env(dir.path()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&watch_log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("build.log")).unwrap()),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let log = || std::fs::read_to_string(dir.path().join("build.log")).unwrap();
        assert!(
            watcher.0.try_wait().unwrap().is_none(),
            "the watcher stopped: {}",
            log()
        );
        assert!(
            started.elapsed() < FIRST_BUILD,
            "no watcher after {FIRST_BUILD:?}: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    println!("build and watcher start: {:.0?}", started.elapsed());
    let lambda = Loop { port, path, env };

    // The README's sequence: a start answers the code, send mails it, login exchanges it.
    let first = Instant::now();
    let started_login = lambda.replay("passwordless-start.200.json", None);
    println!("first invoke: {:.1?}", first.elapsed());
    let code = started_login["code"]
        .as_str()
        .expect("start answers a code")
        .to_owned();
    lambda.replay("passwordless-send.200.json", Some(&code));
    let mail = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(mail.len(), 1, "send wrote one email");
    let logged_in = lambda.replay("passwordless-login.200.json", Some(&code));
    assert!(logged_in["token"].is_string(), "{logged_in}");
    assert_eq!(logged_in["state"]["next"], "/home");
    assert_eq!(
        logged_in["user"]["email"],
        lambda.env["PASSWORDLESS_LOGIN_ID"]
    );

    // Every other sample event, each with a fresh code where it needs one.
    let mut files: Vec<String> = std::fs::read_dir(Path::new(REPOSITORY).join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let sequence = [
        "passwordless-start.200.json",
        "passwordless-send.200.json",
        "passwordless-login.200.json",
    ];
    let mut replayed: Vec<&str> = sequence.to_vec();
    for file in files.iter().filter(|f| !sequence.contains(&f.as_str())) {
        let raw = std::fs::read_to_string(Path::new(REPOSITORY).join("events").join(file)).unwrap();
        let code = match raw.contains("${CODE}") {
            true => Some(
                lambda.replay("passwordless-start.200.json", None)["code"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            false => None,
        };
        lambda.replay(file, code.as_deref());
        replayed.push(file);
    }
    assert_eq!(replayed.len(), files.len());
    for function in ROUTES.iter().map(|r| r.function) {
        assert!(
            replayed.iter().any(|f| function_of(f) == function),
            "no event for {function}"
        );
    }

    // The function URL: an HTTP request to the real start binary, API Gateway-style.
    let response = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/lambda-url/passwordless-start/api/passwordless/start"
        ))
        .header("Authorization", &lambda.env["PASSWORDLESS_API_KEY"])
        .json(&serde_json::json!({
            "applicationId": lambda.env["PASSWORDLESS_APPLICATION_ID"],
            "loginId": lambda.env["PASSWORDLESS_LOGIN_ID"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["code"].is_string(), "{body}");
    let unauthorised = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/lambda-url/management/api/user?email=x@example.com"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);

    // The functions log request lines, in plain text: nothing here is a terminal.
    drop(watcher);
    let log = std::fs::read_to_string(&watch_log).unwrap()
        + &std::fs::read_to_string(dir.path().join("build.log")).unwrap();
    assert!(log.contains("request done"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in the functions' logs: {log:?}"
    );
}
