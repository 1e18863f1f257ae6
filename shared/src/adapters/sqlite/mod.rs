//! The embedded store: one SQLite file in WAL mode. Several processes may share the file;
//! every multi-step change runs in an IMMEDIATE transaction, so the store keeps the same
//! single-use and supersede guarantees as DynamoDB's conditional writes.

use rusqlite::{params, Connection, OptionalExtension, Params, Row, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::ids::TenantId;
use crate::domain::{Instant, User};
use crate::ports::*;

mod codes;
mod config;
mod grants;
mod rate;
mod refresh;
mod two_factor;
mod users;
mod verifications;

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
