//! Passwordless codes on the embedded store: stored by hash, consumed once in an IMMEDIATE
//! transaction, and superseded by a newer start through the user's current code.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::domain::code::{PasswordlessCode, MAX_ONE_TIME_CODE_ATTEMPTS};
use crate::domain::ids::{ApplicationId, TenantId, UserId};
use crate::domain::{Instant, SecretHash, User};
use crate::ports::*;

use super::{from_json, insert_error, to_json, unavailable, CachedStatements, SqliteStore};

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
