//! The embedded store: one SQLite file in WAL mode. Several processes may share the file;
//! every multi-step change runs in an IMMEDIATE transaction, so the store keeps the same
//! single-use and supersede guarantees as DynamoDB's conditional writes.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension, Params, Row, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::code::{PasswordlessCode, MAX_ONE_TIME_CODE_ATTEMPTS};
use crate::domain::ids::{ApplicationId, RefreshTokenId, TemplateId, TenantId, UserId};
use crate::domain::oauth::AuthorizationGrant;
use crate::domain::system::SystemConfiguration;
use crate::domain::tenant::DEFAULT_TENANT_ID;
use crate::domain::verification::{Verification, VerificationTaken, VerificationWanted};
use crate::domain::{
    ApiKey, Application, EmailTemplate, Instant, KeyId, SecretHash, SigningKey, Tenant, User,
};
use crate::ports::*;

mod two_factor;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applications (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    email TEXT,
    username TEXT,
    current_code TEXT,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (tenant_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS users_username ON users (tenant_id, username) WHERE username IS NOT NULL;
CREATE TABLE IF NOT EXISTS codes (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS codes_expiry ON codes (expires_at);
CREATE TABLE IF NOT EXISTS email_templates (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (hash TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signing_keys (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_tokens (hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refresh_families (id TEXT PRIMARY KEY, revoked INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS grants (hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS grants_expiry ON grants (expires_at);
CREATE TABLE IF NOT EXISTS verifications (hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS verifications_expiry ON verifications (expires_at);
CREATE TABLE IF NOT EXISTS two_factor_secrets (user_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS two_factor_challenges (hash TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS two_factor_trusts (hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, expires_at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS two_factor_trusts_user ON two_factor_trusts (user_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
DROP TABLE IF EXISTS rate_counters;
CREATE TABLE IF NOT EXISTS rate_windows (key TEXT NOT NULL, window_start INTEGER NOT NULL, keep_until INTEGER NOT NULL, hits INTEGER NOT NULL, PRIMARY KEY (key, window_start));
CREATE INDEX IF NOT EXISTS rate_windows_keep ON rate_windows (keep_until);
CREATE INDEX IF NOT EXISTS refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX IF NOT EXISTS codes_user ON codes (user_id);
CREATE INDEX IF NOT EXISTS two_factor_challenges_expiry ON two_factor_challenges (expires_at);
CREATE INDEX IF NOT EXISTS two_factor_trusts_expiry ON two_factor_trusts (expires_at);
";

/// How often, at most, a write sweeps what has expired (S38): DynamoDB deletes by TTL, this
/// store by these statements, so that nothing anybody can create (bound codes from the hosted
/// form, rate counters of ever new sources) piles up.
const SWEEP_EVERY_MILLIS: i64 = 60_000;

const SWEEPS: [&str; 7] = [
    "DELETE FROM codes WHERE expires_at <= ?1",
    "DELETE FROM refresh_tokens WHERE expires_at <= ?1",
    "DELETE FROM grants WHERE expires_at <= ?1",
    "DELETE FROM verifications WHERE expires_at <= ?1",
    "DELETE FROM two_factor_challenges WHERE expires_at <= ?1",
    "DELETE FROM two_factor_trusts WHERE expires_at <= ?1",
    "DELETE FROM rate_windows WHERE keep_until <= ?1",
];

/// Statements prepared once per connection and reused: SQLite parses each SQL text once, not on
/// every call (`Connection::execute` and `query_row` prepare anew each time).
pub(super) trait CachedStatements {
    fn query_row_cached<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl CachedStatements for Connection {
    fn query_row_cached<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn execute_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// Every statement the store runs fits, so none is parsed twice.
const STATEMENT_CACHE_CAPACITY: usize = 256;

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// When the last sweep ran (epoch milliseconds).
    last_sweep: Arc<std::sync::atomic::AtomicI64>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Maps a UNIQUE violation to the field it protects.
fn insert_error(e: rusqlite::Error, primary: &'static str) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, Some(message)) = &e {
        if failure.code == rusqlite::ErrorCode::ConstraintViolation {
            return StoreError::Duplicate(if message.contains("users.email") {
                "user.email"
            } else if message.contains("users.username") {
                "user.username"
            } else {
                primary
            });
        }
    }
    unavailable(e)
}

fn sweep_expired(conn: &mut Connection, now: Instant) -> StoreResult<usize> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    let mut swept = 0;
    for statement in SWEEPS {
        swept += tx
            .execute_cached(statement, params![now.as_millis()])
            .map_err(unavailable)?;
    }
    tx.commit().map_err(unavailable)?;
    Ok(swept)
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            super::files::create_private_dir(parent)
                .map_err(|e| unavailable(format!("cannot create {}: {e}", parent.display())))?;
        }
        // Owner-only before SQLite opens it; its -wal and -shm files take the same mode (S26).
        super::files::touch_private(path)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", path.display())))?;
        let conn = Connection::open(path).map_err(unavailable)?;
        Self::prepare(conn)
    }

    /// A private in-memory store, for tests and benchmarks.
    pub fn in_memory() -> StoreResult<Self> {
        Self::prepare(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn prepare(conn: Connection) -> StoreResult<Self> {
        // Another process may hold the write lock for a moment: wait rather than fail.
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            last_sweep: Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)),
        })
    }

    /// Deletes every expired row: codes (bound ones too), refresh tokens, grants,
    /// verifications, two-factor steps and trusts, and rate counters past the windows they can
    /// still be read in. Answers how many rows went.
    pub async fn sweep(&self, now: Instant) -> StoreResult<usize> {
        self.last_sweep
            .store(now.as_millis(), std::sync::atomic::Ordering::Relaxed);
        self.run(move |conn| sweep_expired(conn, now)).await
    }

    /// Sweeps when the last sweep is a minute old; called by the writes that grow the store
    /// (codes, rate counters, verifications, two-factor steps and trusts).
    async fn sweep_if_due(&self, now: Instant) -> StoreResult<()> {
        let last = self.last_sweep.load(std::sync::atomic::Ordering::Relaxed);
        if now.as_millis().saturating_sub(last) >= SWEEP_EVERY_MILLIS {
            self.sweep(now).await?;
        }
        Ok(())
    }

    /// How many rows this store has inserted, changed or deleted since it was opened: equal
    /// counts before and after a request mean the request wrote nothing (tests use it).
    pub fn changes(&self) -> u64 {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .total_changes()
    }

    /// Runs SQLite work on the calling task, under the connection's lock. A point read or write
    /// of the embedded store takes microseconds, less than handing it to a blocking thread
    /// costs (a wake-up and a context switch each way, the largest cost of a login after the
    /// signature in profiles of the local server); the other workers go on meanwhile.
    async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send,
    {
        // A panic in an earlier request poisons the lock, but leaves the connection sound: its
        // open transaction rolled back as the panic unwound. The next request goes on (S25).
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !guard.is_autocommit() {
            guard.execute_batch("ROLLBACK").map_err(unavailable)?;
        }
        work(&mut guard)
    }

    async fn get_body<T: DeserializeOwned + Send + 'static>(
        &self,
        sql: &'static str,
        key: String,
    ) -> StoreResult<Option<T>> {
        self.run(move |conn| {
            let body: Option<String> = conn
                .query_row_cached(sql, [key], |row| row.get(0))
                .optional()
                .map_err(unavailable)?;
            body.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn all_bodies<T: DeserializeOwned + Send + 'static>(
        &self,
        sql: &'static str,
    ) -> StoreResult<Vec<T>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(sql).map_err(unavailable)?;
            let bodies = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(unavailable)?;
            bodies
                .map(|b| b.map_err(unavailable).and_then(|b| from_json(&b)))
                .collect()
        })
        .await
    }

    /// The user of a tenant whose normalized login id (email or username, by `sql`) matches.
    async fn user_by_login(
        &self,
        sql: &'static str,
        tenant: TenantId,
        login_id: &str,
    ) -> StoreResult<Option<User>> {
        let (tenant, login_id) = (
            tenant.to_string(),
            crate::domain::user::normalize_login_id(login_id),
        );
        self.run(move |conn| {
            let body: Option<String> = conn
                .query_row_cached(sql, params![tenant, login_id], |r| r.get(0))
                .optional()
                .map_err(unavailable)?;
            body.as_deref().map(from_json).transpose()
        })
        .await
    }

    async fn insert(
        &self,
        sql: &'static str,
        key: String,
        body: String,
        primary: &'static str,
    ) -> StoreResult<()> {
        self.run(move |conn| {
            conn.execute_cached(sql, params![key, body])
                .map(|_| ())
                .map_err(|e| insert_error(e, primary))
        })
        .await
    }
}

#[async_trait]
impl TenantStore for SqliteStore {
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.get_body("SELECT body FROM tenants WHERE id = ?1", id.to_string())
            .await
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.all_bodies("SELECT body FROM tenants ORDER BY id")
            .await
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        self.insert(
            "INSERT INTO tenants (id, body) VALUES (?1, ?2)",
            tenant.id.to_string(),
            to_json(tenant)?,
            "tenant.id",
        )
        .await
    }

    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let (id, body) = (tenant.id.to_string(), to_json(tenant)?);
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE tenants SET body = ?2 WHERE id = ?1",
                    params![id, body],
                )
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_tenant(&self, id: TenantId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            if tx
                .execute_cached("DELETE FROM tenants WHERE id = ?1", [&id])
                .map_err(unavailable)?
                == 0
            {
                return Err(StoreError::Missing);
            }
            for sql in [
                "DELETE FROM codes WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
                "DELETE FROM refresh_tokens WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
                "DELETE FROM two_factor_trusts WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
                "DELETE FROM two_factor_secrets WHERE tenant_id = ?1",
                "DELETE FROM users WHERE tenant_id = ?1",
                "DELETE FROM applications WHERE tenant_id = ?1",
                "DELETE FROM email_templates WHERE json_extract(body, '$.tenantId') = ?1",
                "DELETE FROM api_keys WHERE json_extract(body, '$.tenantId') = ?1",
                "DELETE FROM signing_keys WHERE json_extract(body, '$.tenantId') = ?1",
                "DELETE FROM grants WHERE json_extract(body, '$.tenantId') = ?1",
            ] {
                tx.execute_cached(sql, [&id]).map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl ApplicationStore for SqliteStore {
    async fn application(&self, id: ApplicationId) -> StoreResult<Option<Application>> {
        self.get_body(
            "SELECT body FROM applications WHERE id = ?1",
            id.to_string(),
        )
        .await
    }

    async fn insert_application(&self, application: &Application) -> StoreResult<()> {
        let (id, tenant, body) = (
            application.id.to_string(),
            application.tenant_id.to_string(),
            to_json(application)?,
        );
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO applications (id, tenant_id, body) VALUES (?1, ?2, ?3)",
                params![id, tenant, body],
            )
            .map(|_| ())
            .map_err(|e| insert_error(e, "application.id"))
        })
        .await
    }

    async fn applications(&self) -> StoreResult<Vec<Application>> {
        self.all_bodies("SELECT body FROM applications ORDER BY id")
            .await
    }

    async fn update_application(&self, application: &Application) -> StoreResult<()> {
        let (id, body) = (application.id.to_string(), to_json(application)?);
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE applications SET body = ?2 WHERE id = ?1",
                    params![id, body],
                )
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_application(&self, id: ApplicationId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            match conn
                .execute_cached("DELETE FROM applications WHERE id = ?1", [id])
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.get_body("SELECT body FROM users WHERE id = ?1", id.to_string())
            .await
    }

    async fn user_by_email(&self, tenant: TenantId, email: &str) -> StoreResult<Option<User>> {
        self.user_by_login(
            "SELECT body FROM users WHERE tenant_id = ?1 AND email = ?2",
            tenant,
            email,
        )
        .await
    }

    async fn user_by_username(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> StoreResult<Option<User>> {
        self.user_by_login(
            "SELECT body FROM users WHERE tenant_id = ?1 AND username = ?2",
            tenant,
            username,
        )
        .await
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let row = (
            user.id.to_string(),
            user.tenant_id.to_string(),
            user.normalized_email(),
            user.normalized_username(),
            to_json(user)?,
        );
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO users (id, tenant_id, email, username, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.0, row.1, row.2, row.3, row.4],
            )
            .map(|_| ())
            .map_err(|e| insert_error(e, "user.id"))
        })
        .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            if tx
                .execute_cached("DELETE FROM users WHERE id = ?1", [&id])
                .map_err(unavailable)?
                == 0
            {
                return Err(StoreError::Missing);
            }
            tx.execute_cached("DELETE FROM codes WHERE user_id = ?1", [&id])
                .map_err(unavailable)?;
            for sql in [
                "DELETE FROM refresh_tokens WHERE user_id = ?1",
                "DELETE FROM two_factor_secrets WHERE user_id = ?1",
                "DELETE FROM two_factor_trusts WHERE user_id = ?1",
            ] {
                tx.execute_cached(sql, [&id]).map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn users_of_tenant(&self, tenant: TenantId) -> StoreResult<Vec<User>> {
        let tenant = tenant.to_string();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare("SELECT body FROM users WHERE tenant_id = ?1")
                .map_err(unavailable)?;
            let bodies = stmt
                .query_map([tenant], |row| row.get::<_, String>(0))
                .map_err(unavailable)?;
            bodies
                .map(|b| b.map_err(unavailable).and_then(|b| from_json(&b)))
                .collect()
        })
        .await
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let row = (
            user.id.to_string(),
            user.normalized_email(),
            user.normalized_username(),
            to_json(user)?,
        );
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE users SET email = ?2, username = ?3, body = ?4 WHERE id = ?1",
                    params![row.0, row.1, row.2, row.3],
                )
                .map_err(|e| insert_error(e, "user.id"))?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn insert_code(&self, code: &PasswordlessCode) -> StoreResult<()> {
        self.sweep_if_due(code.insert_instant).await?;
        let (hash, user, expires, body, bound) = (
            code.code_hash.to_hex(),
            code.user_id.to_string(),
            code.expires_at.as_millis(),
            to_json(code)?,
            code.browser_binding.is_some(),
        );
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let user_exists = tx
                .query_row_cached("SELECT 1 FROM users WHERE id = ?1", [&user], |_| Ok(()))
                .optional()
                .map_err(unavailable)?
                .is_some();
            if !user_exists {
                return Err(StoreError::Missing);
            }
            if !bound {
                // The user's earlier codes die with this start (S6); the pointer below makes
                // that atomic, the delete just keeps the table small.
                tx.execute_cached("DELETE FROM codes WHERE user_id = ?1", [&user])
                    .map_err(unavailable)?;
                tx.execute_cached(
                    "UPDATE users SET current_code = ?1 WHERE id = ?2",
                    params![hash, user],
                )
                .map_err(unavailable)?;
            }
            tx.execute_cached(
                "INSERT INTO codes (hash, user_id, expires_at, body) VALUES (?1, ?2, ?3, ?4)",
                params![hash, user, expires, body],
            )
            .map_err(|e| insert_error(e, "code"))?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn code(&self, hash: &SecretHash, now: Instant) -> StoreResult<Option<PasswordlessCode>> {
        let found: Option<PasswordlessCode> = self
            .get_body("SELECT body FROM codes WHERE hash = ?1", hash.to_hex())
            .await?;
        Ok(found.filter(|c| c.is_live(now)))
    }

    async fn mark_code_emailed(&self, hash: &SecretHash) -> StoreResult<()> {
        let hash = hash.to_hex();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let body: Option<String> = tx
                .query_row_cached("SELECT body FROM codes WHERE hash = ?1", [&hash], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(unavailable)?;
            if let Some(body) = body {
                let mut code: PasswordlessCode = from_json(&body)?;
                code.emailed = true;
                tx.execute_cached(
                    "UPDATE codes SET body = ?2 WHERE hash = ?1",
                    params![hash, to_json(&code)?],
                )
                .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn consume_code(
        &self,
        hash: &SecretHash,
        proof: Proof<'_>,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Consumed> {
        let key = hash.to_hex();
        // (the short code given, the binding the code must have: `Some(None)` for none, the
        // asking browser's binding for a link opened there)
        let (one_time_code, required_binding, link_binding) = match proof {
            Proof::Link => (None, Some(None), None),
            Proof::OneTimeCode(given) => (Some(*given), Some(None), None),
            Proof::BoundOneTimeCode { typed, binding } => {
                (Some(*typed), Some(Some(*binding)), None)
            }
            Proof::BoundBrowser(given) => (None, None, Some(*given)),
        };
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let body: Option<String> = tx
                .query_row_cached("SELECT body FROM codes WHERE hash = ?1", [&key], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(unavailable)?;
            let Some(body) = body else {
                return Ok(Consumed::Nothing);
            };
            let mut code: PasswordlessCode = from_json(&body)?;
            if tenant.is_some_and(|t| t != code.tenant_id) {
                return Ok(Consumed::Nothing);
            }
            if !code.is_live(now) {
                tx.execute_cached("DELETE FROM codes WHERE hash = ?1", [&key])
                    .map_err(unavailable)?;
                tx.commit().map_err(unavailable)?;
                return Ok(Consumed::Nothing);
            }
            if let Some(required) = required_binding {
                // A short code counts only where the code may be taken: without a browser, an
                // unbound code; in a browser, one bound to it (S14).
                let holds = match (required, code.browser_binding) {
                    (None, None) => true,
                    (Some(given), Some(bound)) => bound.matches(&given),
                    _ => false,
                };
                if !holds {
                    return Ok(Consumed::Nothing);
                }
            }
            if let Some(given) = link_binding {
                // Only the browser the code is bound to; a mismatch counts nothing (S14).
                if !code.browser_binding.is_some_and(|b| b.matches(&given)) {
                    return Ok(Consumed::Nothing);
                }
            } else if let Some(expected) = code.one_time_code_hash {
                if !one_time_code.is_some_and(|given| given.matches(&expected)) {
                    code.failed_attempts += 1;
                    if code.failed_attempts >= MAX_ONE_TIME_CODE_ATTEMPTS {
                        tx.execute_cached("DELETE FROM codes WHERE hash = ?1", [&key])
                            .map_err(unavailable)?;
                    } else {
                        tx.execute_cached(
                            "UPDATE codes SET body = ?2 WHERE hash = ?1",
                            params![key, to_json(&code)?],
                        )
                        .map_err(unavailable)?;
                    }
                    tx.commit().map_err(unavailable)?;
                    return Ok(Consumed::WrongOneTimeCode { user: code.user_id });
                }
            }
            tx.execute_cached("DELETE FROM codes WHERE hash = ?1", [&key])
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(Consumed::Code(Box::new(code)))
        })
        .await
    }

    async fn finish_login(
        &self,
        user: UserId,
        code: &PasswordlessCode,
        application: ApplicationId,
        now: Instant,
    ) -> StoreResult<LoginFinish> {
        let (id, hash, emailed, bound) = (
            user.to_string(),
            code.code_hash.to_hex(),
            code.emailed,
            code.browser_binding.is_some(),
        );
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let row: Option<(Option<String>, String)> = tx
                .query_row_cached(
                    "SELECT current_code, body FROM users WHERE id = ?1",
                    [&id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            let Some((current, body)) = row else {
                return Ok(LoginFinish::Superseded);
            };
            // An API start or a login deletes a bound code in the same transaction that would
            // supersede it, so a bound code that was consumed was valid; an API-started one must
            // still be the current code.
            if !bound && current.as_deref() != Some(hash.as_str()) {
                return Ok(LoginFinish::Superseded);
            }
            let mut user: User = from_json(&body)?;
            let finish = if user.login_refusal(now).is_some() {
                LoginFinish::Refused(user)
            } else {
                user.record_login(application, now, emailed);
                LoginFinish::Completed(user)
            };
            let (LoginFinish::Completed(user) | LoginFinish::Refused(user)) = &finish else {
                return Ok(finish);
            };
            tx.execute_cached(
                "UPDATE users SET current_code = NULL, body = ?2 WHERE id = ?1",
                params![id, to_json(user)?],
            )
            .map_err(unavailable)?;
            // Every other code of the user dies with this login.
            tx.execute_cached("DELETE FROM codes WHERE user_id = ?1", [&id])
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(finish)
        })
        .await
    }
}

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn template(&self, id: TemplateId) -> StoreResult<Option<EmailTemplate>> {
        self.get_body(
            "SELECT body FROM email_templates WHERE id = ?1",
            id.to_string(),
        )
        .await
    }

    async fn insert_template(&self, template: &EmailTemplate) -> StoreResult<()> {
        self.insert(
            "INSERT INTO email_templates (id, body) VALUES (?1, ?2)",
            template.id.to_string(),
            to_json(template)?,
            "emailTemplate.id",
        )
        .await
    }

    async fn templates(&self) -> StoreResult<Vec<EmailTemplate>> {
        self.all_bodies("SELECT body FROM email_templates ORDER BY id")
            .await
    }

    async fn update_template(&self, template: &EmailTemplate) -> StoreResult<()> {
        let (id, body) = (template.id.to_string(), to_json(template)?);
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE email_templates SET body = ?2 WHERE id = ?1",
                    params![id, body],
                )
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_template(&self, id: TemplateId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            match conn
                .execute_cached("DELETE FROM email_templates WHERE id = ?1", [id])
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn api_key(&self, hash: &SecretHash) -> StoreResult<Option<ApiKey>> {
        self.get_body("SELECT body FROM api_keys WHERE hash = ?1", hash.to_hex())
            .await
    }

    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.insert(
            "INSERT INTO api_keys (hash, body) VALUES (?1, ?2)",
            key.key_hash.to_hex(),
            to_json(key)?,
            "apiKey.key",
        )
        .await
    }

    async fn api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.all_bodies("SELECT body FROM api_keys ORDER BY hash")
            .await
    }

    async fn update_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let (hash, body) = (key.key_hash.to_hex(), to_json(key)?);
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE api_keys SET body = ?2 WHERE hash = ?1",
                    params![hash, body],
                )
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_api_key(&self, hash: &SecretHash) -> StoreResult<()> {
        let hash = hash.to_hex();
        self.run(move |conn| {
            match conn
                .execute_cached("DELETE FROM api_keys WHERE hash = ?1", [hash])
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn signing_key(&self, id: KeyId) -> StoreResult<Option<SigningKey>> {
        self.get_body(
            "SELECT body FROM signing_keys WHERE id = ?1",
            id.to_string(),
        )
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.all_bodies("SELECT body FROM signing_keys ORDER BY id")
            .await
    }

    async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        self.insert(
            "INSERT INTO signing_keys (id, body) VALUES (?1, ?2)",
            key.id.to_string(),
            to_json(key)?,
            "key.id",
        )
        .await
    }

    async fn delete_signing_key(&self, id: KeyId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            match conn
                .execute_cached("DELETE FROM signing_keys WHERE id = ?1", [id])
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl RefreshTokenStore for SqliteStore {
    async fn insert_refresh_token(&self, token: &StoredRefreshToken) -> StoreResult<()> {
        let row = (
            token.token_hash.to_hex(),
            token.user_id.to_string(),
            token.expires_at.as_millis(),
            to_json(token)?,
        );
        self.run(move |conn| {
            conn.execute_cached("INSERT INTO refresh_tokens (hash, user_id, expires_at, body) VALUES (?1, ?2, ?3, ?4)", params![row.0, row.1, row.2, row.3])
                .map(|_| ())
                .map_err(|e| insert_error(e, "refreshToken"))
        })
        .await
    }

    async fn refresh_token(
        &self,
        hash: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<StoredRefreshToken>> {
        let key = hash.to_hex();
        self.run(move |conn| live_refresh_token(conn, &key, now))
            .await
    }

    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        successor: &StoredRefreshToken,
        now: Instant,
    ) -> StoreResult<Rotation> {
        let (key, successor) = (old.to_hex(), successor.clone());
        let row = (
            successor.token_hash.to_hex(),
            successor.user_id.to_string(),
            successor.expires_at.as_millis(),
            to_json(&successor)?,
        );
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let Some(mut token) = live_refresh_token(&tx, &key, now)? else {
                return Ok(Rotation::Nothing);
            };
            if token.rotated {
                return Ok(Rotation::Reused(token));
            }
            token.rotated = true;
            tx.execute_cached(
                "UPDATE refresh_tokens SET body = ?2 WHERE hash = ?1",
                params![key, to_json(&token)?],
            )
            .map_err(unavailable)?;
            tx.execute_cached(
                "INSERT INTO refresh_tokens (hash, user_id, expires_at, body) VALUES (?1, ?2, ?3, ?4)",
                params![row.0, row.1, row.2, row.3],
            )
            .map_err(|e| insert_error(e, "refreshToken"))?;
            tx.commit().map_err(unavailable)?;
            token.rotated = false;
            Ok(Rotation::Rotated(token))
        })
        .await
    }

    async fn revoke_refresh_family(&self, family: RefreshTokenId) -> StoreResult<()> {
        let id = family.to_string();
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO refresh_families (id, revoked) VALUES (?1, 1) ON CONFLICT (id) DO UPDATE SET revoked = 1",
                params![id],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }

    async fn live_refresh_tokens(
        &self,
        filter: RefreshTokenFilter,
        now: Instant,
    ) -> StoreResult<Vec<StoredRefreshToken>> {
        self.run(move |conn| {
            let hashes = |sql: &str, args: &[&dyn rusqlite::ToSql]| {
                conn.prepare(sql)
                    .and_then(|mut statement| {
                        statement
                            .query_map(args, |r| r.get::<_, String>(0))?
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(unavailable)
            };
            let now_millis = now.as_millis();
            let hashes = match filter {
                RefreshTokenFilter::User(id) => hashes(
                    "SELECT hash FROM refresh_tokens WHERE user_id = ?1 AND expires_at > ?2",
                    &[&id.to_string(), &now_millis],
                )?,
                _ => hashes(
                    "SELECT hash FROM refresh_tokens WHERE expires_at > ?1",
                    &[&now_millis],
                )?,
            };
            let mut live = Vec::new();
            for hash in hashes {
                if let Some(token) = live_refresh_token(conn, &hash, now)? {
                    if !token.rotated && filter.selects(&token) {
                        live.push(token);
                    }
                }
            }
            live.sort_by_key(|t| t.start_instant);
            Ok(live)
        })
        .await
    }
}

/// A refresh token that is unexpired and whose family is not revoked (rotated or not).
fn live_refresh_token(
    conn: &Connection,
    key: &str,
    now: Instant,
) -> StoreResult<Option<StoredRefreshToken>> {
    let body: Option<String> = conn
        .query_row_cached(
            "SELECT body FROM refresh_tokens WHERE hash = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    let Some(token) = body
        .map(|b| from_json::<StoredRefreshToken>(&b))
        .transpose()?
    else {
        return Ok(None);
    };
    let revoked: bool = conn
        .query_row_cached(
            "SELECT revoked FROM refresh_families WHERE id = ?1",
            [token.family_id().to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)?
        .unwrap_or(false);
    Ok((now < token.expires_at && !revoked).then_some(token))
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn insert_grant(&self, hash: &SecretHash, grant: &AuthorizationGrant) -> StoreResult<()> {
        let row = (hash.to_hex(), grant.expires_at.as_millis(), to_json(grant)?);
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO grants (hash, expires_at, body) VALUES (?1, ?2, ?3)",
                params![row.0, row.1, row.2],
            )
            .map(|_| ())
            .map_err(|e| insert_error(e, "grant"))
        })
        .await
    }

    async fn redeem_grant(
        &self,
        hash: &SecretHash,
        now: Instant,
    ) -> StoreResult<Redeemed<AuthorizationGrant>> {
        let hash = hash.to_hex();
        let found: Option<(String, bool)> = self
            .run(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(unavailable)?;
                // An expired grant is gone before the lookup: it redeems nothing (S18).
                tx.execute_cached(
                    "DELETE FROM grants WHERE expires_at <= ?1",
                    params![now.as_millis()],
                )
                .map_err(unavailable)?;
                let row: Option<(String, bool)> = tx
                    .query_row_cached(
                        "SELECT body, used FROM grants WHERE hash = ?1",
                        params![hash],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(unavailable)?;
                if matches!(row, Some((_, false))) {
                    tx.execute_cached("UPDATE grants SET used = 1 WHERE hash = ?1", params![hash])
                        .map_err(unavailable)?;
                }
                tx.commit().map_err(unavailable)?;
                Ok(row)
            })
            .await?;
        Ok(match found {
            None => Redeemed::Nothing,
            Some((body, false)) => Redeemed::Fresh(from_json(&body)?),
            Some((body, true)) => Redeemed::Replayed(from_json(&body)?),
        })
    }
}

#[async_trait]
impl RateLimiter for SqliteStore {
    async fn hit(&self, key: &str, window_seconds: i64, now: Instant) -> StoreResult<u32> {
        self.sweep_if_due(now).await?;
        let (start, end) = now.window(window_seconds);
        let window_start = start.as_millis();
        // A window is read while it lasts and through the next (a caller may ask for the one
        // before), then swept.
        let keep_until = end
            .as_millis()
            .saturating_add(end.as_millis().saturating_sub(window_start));
        let key = key.to_owned();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let hits: u32 = tx
                .query_row_cached(
                    "INSERT INTO rate_windows (key, window_start, keep_until, hits) VALUES (?1, ?2, ?3, 1)
                     ON CONFLICT (key, window_start) DO UPDATE SET hits = hits + 1 RETURNING hits",
                    params![key, window_start, keep_until],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(hits)
        })
        .await
    }

    async fn count(&self, key: &str, window_seconds: i64, now: Instant) -> StoreResult<u32> {
        let window_start = now.window(window_seconds).0.as_millis();
        let key = key.to_owned();
        self.run(move |conn| {
            let hits: Option<u32> = conn
                .query_row_cached(
                    "SELECT hits FROM rate_windows WHERE key = ?1 AND window_start = ?2",
                    params![key, window_start],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            Ok(hits.unwrap_or(0))
        })
        .await
    }
}

#[async_trait]
impl VerificationStore for SqliteStore {
    async fn insert_verification(&self, verification: &Verification) -> StoreResult<()> {
        self.sweep_if_due(verification.insert_instant).await?;
        let (key, expires_at, body) = (
            verification.id_hash.to_hex(),
            verification.expires_at.as_millis(),
            to_json(verification)?,
        );
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO verifications (hash, expires_at, body) VALUES (?1, ?2, ?3)",
                params![key, expires_at, body],
            )
            .map(|_| ())
            .map_err(|e| insert_error(e, "verification"))
        })
        .await
    }

    async fn take_verification(
        &self,
        id: &SecretHash,
        one_time_code: Option<&SecretHash>,
        wanted: VerificationWanted,
        now: Instant,
    ) -> StoreResult<VerificationTaken> {
        let key = id.to_hex();
        let given = one_time_code.copied();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let body: Option<String> = tx
                .query_row_cached(
                    "SELECT body FROM verifications WHERE hash = ?1",
                    [&key],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            let Some(body) = body else {
                return Ok(VerificationTaken::Nothing);
            };
            let mut verification: Verification = from_json(&body)?;
            if !wanted.holds(&verification) {
                return Ok(VerificationTaken::Nothing);
            }
            let delete = |tx: &rusqlite::Transaction<'_>| {
                tx.execute_cached("DELETE FROM verifications WHERE hash = ?1", [&key])
                    .map_err(unavailable)
            };
            if !verification.is_live(now) {
                delete(&tx)?;
                tx.commit().map_err(unavailable)?;
                return Ok(VerificationTaken::Nothing);
            }
            if let Some(expected) = verification.one_time_code_hash {
                let Some(given) = given else {
                    return Ok(VerificationTaken::WrongOneTimeCode { missing: true });
                };
                if !given.matches(&expected) {
                    verification.failed_attempts += 1;
                    if verification.failed_attempts >= MAX_ONE_TIME_CODE_ATTEMPTS {
                        delete(&tx)?;
                    } else {
                        tx.execute_cached(
                            "UPDATE verifications SET body = ?2 WHERE hash = ?1",
                            params![key, to_json(&verification)?],
                        )
                        .map_err(unavailable)?;
                    }
                    tx.commit().map_err(unavailable)?;
                    return Ok(VerificationTaken::WrongOneTimeCode { missing: false });
                }
            }
            delete(&tx)?;
            tx.commit().map_err(unavailable)?;
            Ok(VerificationTaken::Taken(Box::new(verification)))
        })
        .await
    }
}

#[async_trait]
impl SystemStore for SqliteStore {
    async fn system_configuration(&self) -> StoreResult<Option<SystemConfiguration>> {
        self.get_body(
            "SELECT value FROM meta WHERE key = ?1",
            "systemConfiguration".to_owned(),
        )
        .await
    }

    async fn put_system_configuration(
        &self,
        configuration: &SystemConfiguration,
    ) -> StoreResult<()> {
        let body = to_json(configuration)?;
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO meta (key, value) VALUES ('systemConfiguration', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [body],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl StoreAdmin for SqliteStore {
    async fn is_pristine(&self) -> StoreResult<bool> {
        let default = DEFAULT_TENANT_ID.to_string();
        self.run(move |conn| {
            let count: i64 = conn
                .query_row_cached(
                    "SELECT (SELECT COUNT(*) FROM tenants WHERE id != ?1) + (SELECT COUNT(*) FROM applications)
                          + (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM api_keys)
                          + (SELECT COUNT(*) FROM meta WHERE key = 'kickstart')",
                    [default],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            Ok(count == 0)
        })
        .await
    }

    async fn kickstart_mark(&self) -> StoreResult<Option<KickstartMark>> {
        self.run(|conn| {
            let value: Option<String> = conn
                .query_row_cached("SELECT value FROM meta WHERE key = 'kickstart'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(unavailable)?;
            value.as_deref().map(KickstartMark::from_stored).transpose()
        })
        .await
    }

    async fn set_kickstart_mark(&self, mark: KickstartMark) -> StoreResult<()> {
        let sql = match mark {
            KickstartMark::Started => "INSERT INTO meta (key, value) VALUES ('kickstart', ?1)",
            KickstartMark::Completed => "UPDATE meta SET value = ?1 WHERE key = 'kickstart'",
        };
        self.run(move |conn| {
            match conn
                .execute_cached(sql, [mark.as_str()])
                .map_err(|e| insert_error(e, "kickstart"))?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl WrappedDataKeyStore for SqliteStore {
    async fn wrapped_data_key(&self) -> StoreResult<Option<Vec<u8>>> {
        self.run(|conn| {
            let value: Option<String> = conn
                .query_row_cached("SELECT value FROM meta WHERE key = 'dataKey'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(unavailable)?;
            value
                .map(|v| {
                    STANDARD
                        .decode(v)
                        .map_err(|e| StoreError::Corrupt(format!("the wrapped data key: {e}")))
                })
                .transpose()
        })
        .await
    }

    async fn insert_wrapped_data_key(&self, wrapped: &[u8]) -> StoreResult<()> {
        let value = STANDARD.encode(wrapped);
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO meta (key, value) VALUES ('dataKey', ?1)",
                [value],
            )
            .map(|_| ())
            .map_err(|e| insert_error(e, "dataKey"))
        })
        .await
    }
}
