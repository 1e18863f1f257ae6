//! Starts the real server in-process on port 0 with an injected clock, and speaks HTTP to it.
#![allow(dead_code)]

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tempfile::TempDir;
use tokio::sync::oneshot;

use passwordless::adapters::clock::ManualClock;
use passwordless::adapters::dynamodb::{DynamoStore, Tables};
use passwordless::adapters::entropy::OsEntropy;
use passwordless::adapters::keys::AwsLcKeyMaker;
use passwordless::adapters::outbox::OutboxMailer;
use passwordless::adapters::sesv2::SesMailer;
use passwordless::adapters::sqlite::SqliteStore;
use passwordless::adapters::vault::{KmsKeyVault, LocalKeyVault};
use passwordless::app::{App, AppParts};
use passwordless::domain::email::OutgoingEmail;
use passwordless::domain::tenant::DEFAULT_TENANT_ID;
use passwordless::domain::{ApiKeyPermissions, Instant, Secret, TenantId};
use passwordless::flows::management::create_api_key;
use passwordless::ports::{KeyVault, MailError, Mailer, SentEmail, Store};
use passwordless_cli::server::ServerOptions;

pub mod faulty;
use faulty::{Faults, FaultyMailer, FaultyStore};

/// 2026-01-01T00:00:00Z: tests start every clock here and move it by hand.
pub const T0: Instant = Instant::from_secs(1_767_225_600);
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";
pub const PUBLIC_URL: &str = "https://login.example.test";

/// What the server runs on: SQLite and the outbox folder by default; DynamoDB and SES on the
/// loopback emulator when `PASSWORDLESS_TEST_BACKEND=aws`, so the whole suite runs against both
/// store/mailer pairs.
pub enum Backend {
    Local,
    Aws {
        client: aws_sdk_dynamodb::Client,
        tables: Tables,
        endpoint: String,
        /// The KMS key that wraps this server's data key.
        kms: aws_sdk_kms::Client,
        kms_key: String,
    },
}

/// Sender domains the tests use, verified in SES so that it accepts their mail.
const SENDER_DOMAINS: [&str; 3] = ["localhost", "piedpiper.example", "compat.example"];

/// A mail as its reader sees it. SES on the emulator keeps only the HTML part of a message
/// that has both, so `text` is `None` there; the outbox keeps both.
#[derive(Debug, Clone)]
pub struct Email {
    pub from: Address,
    pub to: Address,
    pub subject: String,
    pub html: String,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: Option<String>,
    pub email: String,
}

impl Address {
    pub fn new(name: &str, email: &str) -> Address {
        Address {
            name: Some(name.to_owned()),
            email: email.to_owned(),
        }
    }

    /// A header's mailbox as a reader shows it: RFC 2047 names decoded.
    fn parse(mailbox: &str) -> Address {
        let header = format!("To: {mailbox}\r\n\r\n");
        let message = mail_parser::MessageParser::default()
            .parse(header.as_bytes())
            .unwrap_or_else(|| panic!("not a mailbox: {mailbox}"));
        let addr = message
            .to()
            .and_then(|a| a.first())
            .unwrap_or_else(|| panic!("not a mailbox: {mailbox}"));
        Address {
            name: addr.name().map(str::to_owned),
            email: addr.address().unwrap().to_owned(),
        }
    }
}

impl Email {
    /// The code inside the magic link of the HTML part (and of the text part where it is kept).
    pub fn link_code(&self) -> String {
        let code = link_code_in(&self.html);
        if let Some(text) = &self.text {
            assert_eq!(link_code_in(text), code, "both parts carry the same link");
        }
        code
    }
}

fn link_code_in(body: &str) -> String {
    let start =
        body.find("/oauth2/passwordless/").expect("a magic link") + "/oauth2/passwordless/".len();
    body[start..]
        .split(['?', '"', '\r', '\n', '&', '<', ' '])
        .next()
        .unwrap()
        .to_owned()
}

/// Wraps the server's mailer and keeps the id of every message it took, in order, so that a
/// test reads back exactly its own server's mail even from an emulator that tests share.
struct RecordingMailer {
    inner: Arc<dyn Mailer>,
    sent: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<SentEmail, MailError> {
        let sent = self.inner.send(email).await?;
        self.sent.lock().unwrap().push(sent.message_id.clone());
        Ok(sent)
    }
}

pub struct TestServer {
    pub base: String,
    pub backend: Backend,
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    pub dir: TempDir,
    pub client: reqwest::Client,
    sent: Arc<Mutex<Vec<String>>>,
    shutdown: Option<oneshot::Sender<()>>,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        self
    }

    /// A 400 in FusionAuth's shape that names `code`, in fieldErrors or generalErrors.
    /// A 400 carrying `code`. `[invalidJSON]property` means FusionAuth's `[invalidJSON]` general
    /// error whose message names `property`.
    pub fn assert_error_code(&self, code: &str) {
        self.assert_status(400);
        let body = self.json();
        if let Some(property) = code.strip_prefix("[invalidJSON]").filter(|p| !p.is_empty()) {
            let named = format!("The property was [{property}].");
            let found = body["generalErrors"].as_array().is_some_and(|list| {
                list.iter().any(|e| {
                    e["code"] == "[invalidJSON]"
                        && e["message"].as_str().is_some_and(|m| m.contains(&named))
                })
            });
            assert!(found, "expected {code} in {}", self.text);
            return;
        }
        let in_fields = body["fieldErrors"].as_object().is_some_and(|fields| {
            fields
                .values()
                .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                .any(|e| e["code"] == code)
        });
        let in_general = body["generalErrors"]
            .as_array()
            .is_some_and(|list| list.iter().any(|e| e["code"] == code));
        assert!(in_fields || in_general, "expected {code} in {}", self.text);
    }
}

/// A mailer that panics on every send: a stand-in for a fault deep in a request (S25).
pub struct PanickingMailer;

#[async_trait]
impl Mailer for PanickingMailer {
    async fn send(&self, _: &OutgoingEmail) -> Result<SentEmail, MailError> {
        panic!("the mailer broke");
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(None, ServerOptions::default(), ManualClock::starting_at(T0)).await
    }

    /// Whether the server runs on DynamoDB and SES (moto) rather than SQLite and the outbox.
    pub fn on_aws(&self) -> bool {
        matches!(self.backend, Backend::Aws { .. })
    }

    /// A server whose store and mailer fail where the returned [`Faults`] is armed to (S23).
    pub async fn start_with_faults() -> (TestServer, Arc<Faults>) {
        let faults = Faults::new();
        let server = TestServer::start_wrapped(
            None,
            ServerOptions::default(),
            ManualClock::starting_at(T0),
            Some(faults.clone()),
        )
        .await;
        (server, faults)
    }

    /// A server behind a proxy on loopback: each request's `X-Forwarded-For` names its source,
    /// so one test can speak as many clients (S27).
    pub async fn start_behind_proxy() -> TestServer {
        let options = ServerOptions {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..ServerOptions::default()
        };
        TestServer::start_with(None, options, ManualClock::starting_at(T0)).await
    }

    /// A server on the usual store whose mail goes to `mailer` instead.
    pub async fn start_with_mailer(mailer: Arc<dyn Mailer>) -> TestServer {
        TestServer::start_with(
            Some(mailer),
            ServerOptions::default(),
            ManualClock::starting_at(T0),
        )
        .await
    }

    async fn start_with(
        replacement: Option<Arc<dyn Mailer>>,
        options: ServerOptions,
        clock: ManualClock,
    ) -> TestServer {
        TestServer::start_wrapped(replacement, options, clock, None).await
    }

    async fn start_wrapped(
        replacement: Option<Arc<dyn Mailer>>,
        options: ServerOptions,
        clock: ManualClock,
        faults: Option<Arc<Faults>>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(clock);
        let (store, mailer, backend): (Arc<dyn Store>, Arc<dyn Mailer>, Backend) =
            match std::env::var("PASSWORDLESS_TEST_BACKEND").as_deref() {
                Ok("aws") => {
                    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect(
                        "AWS_ENDPOINT_URL must point at the emulator: run `bash scripts/test.sh`",
                    );
                    let aws = aws_config::load_from_env().await;
                    let client = aws_sdk_dynamodb::Client::new(&aws);
                    let tables =
                        Tables::with_prefix(&format!("bb{}", uuid::Uuid::new_v4().simple()));
                    let store = DynamoStore::new(client.clone(), tables.clone());
                    store.create_tables().await.unwrap();
                    let ses = aws_sdk_sesv2::Client::new(&aws);
                    for domain in SENDER_DOMAINS {
                        ses.create_email_identity()
                            .email_identity(domain)
                            .send()
                            .await
                            .unwrap();
                    }
                    let kms = aws_sdk_kms::Client::new(&aws);
                    let kms_key = kms_key(&kms).await;
                    (
                        Arc::new(store),
                        Arc::new(SesMailer::new(ses, None)),
                        Backend::Aws {
                            client,
                            tables,
                            endpoint,
                            kms,
                            kms_key,
                        },
                    )
                }
                _ => (
                    Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap()),
                    Arc::new(OutboxMailer::new(dir.path().join("outbox"), clock.clone())),
                    Backend::Local,
                ),
            };
        let mailer = replacement.unwrap_or(mailer);
        let (store, mailer): (Arc<dyn Store>, Arc<dyn Mailer>) = match faults {
            Some(faults) => (
                Arc::new(FaultyStore {
                    inner: store,
                    faults: faults.clone(),
                }),
                Arc::new(FaultyMailer {
                    inner: mailer,
                    faults,
                }),
            ),
            None => (store, mailer),
        };
        let sent = Arc::new(Mutex::new(Vec::new()));
        let key_vault = vault(&backend, dir.path(), None);
        let app = App::from_parts(AppParts {
            store,
            key_vault,
            mailer: Arc::new(RecordingMailer {
                inner: mailer,
                sent: sent.clone(),
            }),
            clock: clock.clone(),
            entropy: Arc::new(OsEntropy),
            key_maker: Arc::new(AwsLcKeyMaker),
            public_url: PUBLIC_URL.to_owned(),
        })
        .await
        .unwrap();
        create_api_key(
            app.store.as_ref(),
            app.entropy.as_ref(),
            app.clock.as_ref(),
            &Secret::new(ADMIN_KEY),
            "admin",
            None,
            None,
            passwordless::http::routes::is_permissible,
        )
        .await
        .unwrap();
        let app = Arc::new(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(passwordless_cli::server::serve(
            app.clone(),
            listener,
            options,
            async {
                let _ = rx.await;
            },
        ));
        TestServer {
            base,
            backend,
            app,
            clock,
            dir,
            client: reqwest::Client::new(),
            sent,
            shutdown: Some(tx),
        }
    }

    /// A server whose clock is the wall clock, for client libraries that read the real time
    /// too: a token's `exp`, an authenticator code (its 30-second step must be the server's
    /// however long the script has run).
    pub async fn start_at_wall_clock() -> TestServer {
        TestServer::start_with(
            None,
            ServerOptions::default(),
            ManualClock::following_wall_clock(),
        )
        .await
    }

    /// A server with one passwordless application and one user registered for it.
    pub async fn with_user(email: &str) -> (TestServer, String) {
        let server = TestServer::start().await;
        let app = server.application(json!({})).await;
        server.user(&app, email, json!({})).await;
        (server, app)
    }

    /// A second `App` on this server's store, as a restarted process would build it.
    pub async fn reopen(&self) -> Result<App, passwordless::app::AppError> {
        self.reopen_with_vault(vault(&self.backend, self.dir.path(), None))
            .await
    }

    /// A second `App` on a copy of this server's data whose thief lacks the vault's key: a
    /// key file of its own, or a KMS key of its own (S26).
    pub async fn stolen_copy(&self) -> App {
        let elsewhere = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = match &self.backend {
            Backend::Local => {
                let copy = elsewhere.path().join("store.db");
                std::fs::copy(self.store_path(), &copy).unwrap();
                let wal = self.store_path().with_extension("db-wal");
                if wal.exists() {
                    std::fs::copy(wal, copy.with_extension("db-wal")).unwrap();
                }
                Arc::new(SqliteStore::open(&copy).unwrap())
            }
            Backend::Aws { client, tables, .. } => {
                Arc::new(DynamoStore::new(client.clone(), tables.clone()))
            }
        };
        let thief_key = match &self.backend {
            Backend::Local => None,
            Backend::Aws { kms, .. } => Some(kms_key(kms).await),
        };
        let app = App::from_parts(AppParts {
            store,
            key_vault: vault(&self.backend, elsewhere.path(), thief_key),
            mailer: Arc::new(PanickingMailer),
            clock: self.clock.clone(),
            entropy: Arc::new(OsEntropy),
            key_maker: Arc::new(AwsLcKeyMaker),
            public_url: PUBLIC_URL.to_owned(),
        })
        .await
        .unwrap();
        // The folder goes with the function; the copied store stays open in `app`.
        std::mem::forget(elsewhere);
        app
    }

    async fn reopen_with_vault(
        &self,
        key_vault: Arc<dyn KeyVault>,
    ) -> Result<App, passwordless::app::AppError> {
        let store: Arc<dyn Store> = match &self.backend {
            Backend::Local => Arc::new(SqliteStore::open(&self.store_path()).unwrap()),
            Backend::Aws { client, tables, .. } => {
                Arc::new(DynamoStore::new(client.clone(), tables.clone()))
            }
        };
        App::from_parts(AppParts {
            store,
            key_vault,
            mailer: Arc::new(PanickingMailer),
            clock: self.clock.clone(),
            entropy: Arc::new(OsEntropy),
            key_maker: Arc::new(AwsLcKeyMaker),
            public_url: PUBLIC_URL.to_owned(),
        })
        .await
    }

    /// A tenant as the management API shows it.
    pub async fn get_tenant(&self, id: &str) -> Value {
        let response = self
            .get(&format!("/api/tenant/{id}"), Some(ADMIN_KEY))
            .await;
        response.assert_status(200);
        response.json()["tenant"].clone()
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("store.db")
    }

    fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// Where a reader outside this process finds the mail: the outbox folder, or the
    /// emulator's endpoint.
    pub fn mailbox(&self) -> String {
        match &self.backend {
            Backend::Local => self.outbox().display().to_string(),
            Backend::Aws { endpoint, .. } => endpoint.clone(),
        }
    }

    /// Whether the mail this server sends can be read back with its text part.
    pub fn keeps_text_parts(&self) -> bool {
        matches!(self.backend, Backend::Local)
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(key) = key {
            request = request.header("Authorization", key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        if !text.is_empty() {
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert!(
                content_type.starts_with("application/json"),
                "a body must be JSON, got {content_type}: {text}"
            );
        }
        Response {
            status,
            headers,
            text,
        }
    }

    /// A request with a JSON body (or none) and an API key.
    pub async fn call(&self, method: &str, path: &str, key: &str, body: Option<Value>) -> Response {
        self.request(
            method,
            path,
            Some(key),
            &[],
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    pub async fn post(&self, path: &str, key: Option<&str>, body: Value) -> Response {
        self.request("POST", path, key, &[], Some(body.to_string().into_bytes()))
            .await
    }

    /// Patches the default tenant with the admin key; the patch must be accepted.
    pub async fn patch_default_tenant(&self, patch: Value) {
        self.admin(
            "PATCH",
            &format!("/api/tenant/{}", self.default_tenant()),
            patch,
        )
        .await
        .assert_status(200);
    }

    pub async fn admin(&self, method: &str, path: &str, body: Value) -> Response {
        self.request(
            method,
            path,
            Some(ADMIN_KEY),
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Response {
        self.request("GET", path, key, &[], None).await
    }

    /// Creates an application with passwordless enabled; `extra` is merged into its body.
    pub async fn application(&self, extra: Value) -> String {
        let mut application = json!({
            "name": "App",
            "passwordlessConfiguration": {"enabled": true},
            "roles": [{"name": "user"}, {"name": "admin"}],
        });
        merge(&mut application, extra);
        let response = self
            .admin(
                "POST",
                "/api/application",
                json!({"application": application}),
            )
            .await;
        response.assert_status(200);
        response.json()["application"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an email template from a `{"emailTemplate": …}` body and returns its id.
    pub async fn email_template(&self, body: Value) -> String {
        let response = self.admin("POST", "/api/email/template", body).await;
        response.assert_status(200);
        response.json()["emailTemplate"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a user registered (with role `user`) for `application`; `extra` is merged into the user.
    pub async fn user(&self, application: &str, email: &str, extra: Value) -> String {
        let mut user = json!({"email": email, "firstName": "Test"});
        merge(&mut user, extra);
        let body = json!({"user": user, "registration": {"applicationId": application, "roles": ["user"]}});
        let response = self.admin("POST", "/api/user/registration", body).await;
        response.assert_status(200);
        response.json()["user"]["id"].as_str().unwrap().to_owned()
    }

    /// Stores an API key limited to `endpoints` (none: no limits) and locked to `tenant`.
    pub async fn api_key(&self, key: &str, endpoints: &[(&str, &[&str])], tenant: Option<&str>) {
        let permissions = (!endpoints.is_empty()).then(|| ApiKeyPermissions {
            endpoints: endpoints
                .iter()
                .map(|(e, m)| (e.to_string(), m.iter().map(|m| m.to_string()).collect()))
                .collect(),
        });
        create_api_key(
            self.app.store.as_ref(),
            self.app.entropy.as_ref(),
            self.app.clock.as_ref(),
            &Secret::new(key),
            "test",
            permissions,
            tenant.map(|t| TenantId::parse(t).unwrap()),
            passwordless::http::routes::is_permissible,
        )
        .await
        .unwrap();
    }

    /// Creates a tenant and returns its id.
    pub async fn tenant(&self, name: &str) -> String {
        let response = self
            .admin("POST", "/api/tenant", json!({"tenant": {"name": name}}))
            .await;
        response.assert_status(200);
        response.json()["tenant"]["id"].as_str().unwrap().to_owned()
    }

    /// A user with no registration for `application` (registered elsewhere).
    pub async fn unregistered_user(&self, email: &str) -> String {
        let other = self.application(json!({"name": "Other"})).await;
        self.user(&other, email, json!({})).await
    }

    /// The server's clock now (tests move it by hand).
    pub fn clock_now(&self) -> Instant {
        passwordless::ports::Clock::now(self.clock.as_ref())
    }

    pub async fn start_login(&self, application: &str, login_id: &str, extra: Value) -> Response {
        let mut body = json!({"applicationId": application, "loginId": login_id});
        merge(&mut body, extra);
        self.post("/api/passwordless/start", Some(ADMIN_KEY), body)
            .await
    }

    /// Starts and returns the code.
    pub async fn code(&self, application: &str, login_id: &str) -> String {
        let response = self.start_login(application, login_id, json!({})).await;
        response.assert_status(200);
        response.json()["code"].as_str().unwrap().to_owned()
    }

    pub async fn login(&self, body: Value) -> Response {
        self.post("/api/passwordless/login", None, body).await
    }

    pub async fn send(&self, body: Value) -> Response {
        self.post("/api/passwordless/send", None, body).await
    }

    /// Every message this server sent, oldest first, read back from where it went.
    pub async fn emails(&self) -> Vec<Email> {
        let ids = self.sent.lock().unwrap().clone();
        match &self.backend {
            Backend::Local => ids
                .iter()
                .map(|id| {
                    parse_eml(&std::fs::read(self.outbox().join(format!("{id}.eml"))).unwrap())
                })
                .collect(),
            Backend::Aws { endpoint, .. } => {
                let kept = ses_messages(endpoint).await;
                ids.iter()
                    .map(|id| {
                        let message = kept
                            .iter()
                            .find(|m| m["id"] == id.as_str())
                            .unwrap_or_else(|| panic!("SES kept no message {id}"));
                        Email {
                            from: Address::parse(message["source"].as_str().unwrap()),
                            to: Address::parse(
                                message["destinations"]["ToAddresses"][0].as_str().unwrap(),
                            ),
                            subject: message["subject"].as_str().unwrap().to_owned(),
                            html: message["body"].as_str().unwrap().to_owned(),
                            text: None,
                        }
                    })
                    .collect()
            }
        }
    }

    /// Every stored item but the rate counters: equal fingerprints mean nothing changed.
    pub async fn store_fingerprint(&self) -> String {
        match &self.backend {
            Backend::Local => {
                let conn = rusqlite::Connection::open(self.store_path()).unwrap();
                let mut out = String::new();
                for table in [
                    "tenants",
                    "applications",
                    "users",
                    "codes",
                    "email_templates",
                    "api_keys",
                    "signing_keys",
                    "refresh_tokens",
                ] {
                    let mut stmt = conn
                        .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
                        .unwrap();
                    let columns = stmt.column_count();
                    let rows = stmt
                        .query_map([], |row| {
                            (0..columns)
                                .map(|i| {
                                    row.get::<_, rusqlite::types::Value>(i)
                                        .map(|v| format!("{v:?}"))
                                })
                                .collect::<Result<Vec<_>, _>>()
                        })
                        .unwrap();
                    for row in rows {
                        out.push_str(&format!("{table}: {}\n", row.unwrap().join("|")));
                    }
                }
                out
            }
            Backend::Aws { client, tables, .. } => {
                let mut lines = Vec::new();
                for table in [&tables.config, &tables.users, &tables.codes] {
                    let items = client.scan().table_name(table).send().await.unwrap();
                    for item in items.items() {
                        let mut fields: Vec<String> =
                            item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                        fields.sort();
                        let line = fields.join("|");
                        if !line.contains("RATE#") {
                            lines.push(format!("{table}: {line}"));
                        }
                    }
                }
                lines.sort();
                lines.join("\n")
            }
        }
    }

    /// Everything the store keeps, as bytes: the database files, or every item.
    pub async fn raw_store(&self) -> Vec<u8> {
        match &self.backend {
            Backend::Local => {
                let mut bytes = std::fs::read(self.store_path()).unwrap();
                bytes.extend(
                    std::fs::read(self.store_path().with_extension("db-wal")).unwrap_or_default(),
                );
                bytes
            }
            Backend::Aws { .. } => self.store_fingerprint().await.into_bytes(),
        }
    }

    /// Removes every API key, so the store counts as empty for kickstart.
    pub async fn forget_api_keys(&self) {
        match &self.backend {
            Backend::Local => {
                let conn = rusqlite::Connection::open(self.store_path()).unwrap();
                conn.execute("DELETE FROM api_keys", []).unwrap();
            }
            Backend::Aws { client, tables, .. } => {
                use aws_sdk_dynamodb::types::AttributeValue;
                let keys = client
                    .query()
                    .table_name(&tables.config)
                    .key_condition_expression("pk = :k")
                    .expression_attribute_values(":k", AttributeValue::S("APIKEY".into()))
                    .send()
                    .await
                    .unwrap();
                for item in keys.items() {
                    client
                        .delete_item()
                        .table_name(&tables.config)
                        .key("pk", item["pk"].clone())
                        .key("sk", item["sk"].clone())
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
    }

    pub fn default_tenant(&self) -> String {
        DEFAULT_TENANT_ID.to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The server's key vault: a key file in its folder, or envelope encryption under its KMS key
/// with the data key wrapped in its tables. `other_kms_key` swaps in another KMS key.
fn vault(
    backend: &Backend,
    dir: &std::path::Path,
    other_kms_key: Option<String>,
) -> Arc<dyn KeyVault> {
    match backend {
        Backend::Local => Arc::new(LocalKeyVault::open_or_create(&dir.join("store.key")).unwrap()),
        Backend::Aws {
            client,
            tables,
            kms,
            kms_key,
            ..
        } => Arc::new(KmsKeyVault::new(
            kms.clone(),
            other_kms_key.unwrap_or_else(|| kms_key.clone()),
            Arc::new(DynamoStore::new(client.clone(), tables.clone())),
        )),
    }
}

pub fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (k, v) in patch {
                merge(target.entry(k).or_insert(Value::Null), v);
            }
        }
        (target, patch) => *target = patch,
    }
}

/// Every message the SES emulator kept. moto dumps its whole state for this, and answers 500
/// when a parallel test changes that state mid-dump, so a failed read is tried again.
async fn ses_messages(endpoint: &str) -> Vec<Value> {
    let mut failure = String::new();
    for attempt in 1..=20u64 {
        match reqwest::get(format!("{endpoint}/moto-api/data.json")).await {
            Ok(response) if response.status().is_success() => {
                match response.json::<Value>().await {
                    Ok(data) => {
                        return data["ses"]["Message"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                    }
                    Err(e) => failure = e.to_string(),
                }
            }
            Ok(response) => failure = format!("status {}", response.status()),
            Err(e) => failure = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
    }
    panic!("moto's data.json kept failing: {failure}");
}

/// An outbox `.eml` file, MIME-decoded.
fn parse_eml(bytes: &[u8]) -> Email {
    let message = mail_parser::MessageParser::default()
        .parse(bytes)
        .expect("an RFC 5322 message");
    let address = |header: Option<&mail_parser::Address>| {
        let addr = header.and_then(|a| a.first()).expect("an address");
        Address {
            name: addr.name().map(str::to_owned),
            email: addr.address().unwrap().to_owned(),
        }
    };
    assert_eq!(message.html_body_count(), 1, "one HTML part");
    assert_eq!(message.text_body_count(), 1, "one text part");
    Email {
        from: address(message.from()),
        to: address(message.to()),
        subject: message.subject().unwrap().to_owned(),
        html: message.body_html(0).unwrap().into_owned(),
        text: Some(message.body_text(0).unwrap().into_owned()),
    }
}

/// The claims of a JWT, verified against the server's JWKS.
pub async fn verified_claims(server: &TestServer, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.clone().expect("a kid");
    let jwks = server.get("/.well-known/jwks.json", None).await.json();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published")
        .clone();
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[PUBLIC_URL]);
    // The server's clock is the test's; jsonwebtoken reads the wall clock, so skip exp here and check it by hand.
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .unwrap()
        .claims
}

/// A fresh KMS key on the emulator, by id.
pub async fn kms_key(kms: &aws_sdk_kms::Client) -> String {
    kms.create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned()
}

/// Asserts that a client script ran to its end: it exits 0 after printing "all checks passed".
pub fn assert_script_passed(output: &std::process::Output) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "the client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
