//! Two-factor records on the embedded store: secrets by user (saved by version), pending steps
//! and trusts under the hash of their ids.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{from_json, to_json, unavailable, CachedStatements, SqliteStore};
use crate::domain::two_factor::{TwoFactorChallenge, TwoFactorSecrets, TwoFactorTrust};
use crate::domain::{Instant, SecretHash, UserId};
use crate::ports::{StoreResult, TwoFactorStore};

#[async_trait]
impl TwoFactorStore for SqliteStore {
    async fn two_factor_secrets(&self, user: UserId) -> StoreResult<Option<TwoFactorSecrets>> {
        self.get_body(
            "SELECT body FROM two_factor_secrets WHERE user_id = ?1",
            user.to_string(),
        )
        .await
    }

    async fn save_two_factor_secrets(&self, secrets: &TwoFactorSecrets) -> StoreResult<bool> {
        let (user, tenant, version, body) = (
            secrets.user_id.to_string(),
            secrets.tenant_id.to_string(),
            i64::try_from(secrets.version).unwrap_or(i64::MAX),
            to_json(secrets)?,
        );
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let stored: i64 = tx
                .query_row_cached(
                    "SELECT version FROM two_factor_secrets WHERE user_id = ?1",
                    [&user],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?
                .unwrap_or(0);
            if stored + 1 != version {
                return Ok(false);
            }
            tx.execute_cached(
                "INSERT INTO two_factor_secrets (user_id, tenant_id, version, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, body = excluded.body",
                params![user, tenant, version, body],
            )
            .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn put_two_factor_challenge(&self, challenge: &TwoFactorChallenge) -> StoreResult<()> {
        self.sweep_if_due(challenge.insert_instant).await?;
        let (key, expires_at, body) = (
            challenge.id_hash.to_hex(),
            challenge.expires_at.as_millis(),
            to_json(challenge)?,
        );
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO two_factor_challenges (hash, expires_at, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at, body = excluded.body",
                params![key, expires_at, body],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }

    async fn two_factor_challenge(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorChallenge>> {
        let found: Option<TwoFactorChallenge> = self
            .get_body(
                "SELECT body FROM two_factor_challenges WHERE hash = ?1",
                id.to_hex(),
            )
            .await?;
        Ok(found.filter(|c| c.is_live(now)))
    }

    async fn fail_two_factor_challenge(&self, id: &SecretHash, now: Instant) -> StoreResult<bool> {
        let key = id.to_hex();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let Some(mut challenge) = read_challenge(&tx, &key)?.filter(|c| c.is_live(now)) else {
                return Ok(false);
            };
            challenge.failed_attempts += 1;
            if challenge.is_live(now) {
                tx.execute_cached(
                    "UPDATE two_factor_challenges SET body = ?2 WHERE hash = ?1",
                    params![key, to_json(&challenge)?],
                )
                .map_err(unavailable)?;
            } else {
                tx.execute_cached("DELETE FROM two_factor_challenges WHERE hash = ?1", [&key])
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn take_two_factor_challenge(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorChallenge>> {
        let key = id.to_hex();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let Some(challenge) = read_challenge(&tx, &key)? else {
                return Ok(None);
            };
            tx.execute_cached("DELETE FROM two_factor_challenges WHERE hash = ?1", [&key])
                .map_err(unavailable)?;
            tx.commit().map_err(unavailable)?;
            Ok(Some(challenge).filter(|c| c.is_live(now)))
        })
        .await
    }

    async fn insert_two_factor_trust(&self, trust: &TwoFactorTrust) -> StoreResult<()> {
        self.sweep_if_due(trust.start_instant).await?;
        let (key, user, expires_at, body) = (
            trust.id_hash.to_hex(),
            trust.user_id.to_string(),
            trust.expires_at.as_millis(),
            to_json(trust)?,
        );
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO two_factor_trusts (hash, user_id, expires_at, body) VALUES (?1, ?2, ?3, ?4)",
                params![key, user, expires_at, body],
            )
            .map(|_| ())
            .map_err(|e| super::insert_error(e, "twoFactorTrust"))
        })
        .await
    }

    async fn two_factor_trust(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorTrust>> {
        let found: Option<TwoFactorTrust> = self
            .get_body(
                "SELECT body FROM two_factor_trusts WHERE hash = ?1",
                id.to_hex(),
            )
            .await?;
        Ok(found.filter(|t| t.is_live(now)))
    }
}

fn read_challenge(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
) -> StoreResult<Option<TwoFactorChallenge>> {
    let body: Option<String> = tx
        .query_row_cached(
            "SELECT body FROM two_factor_challenges WHERE hash = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    body.as_deref().map(from_json).transpose()
}
