//! Email and registration verifications on the embedded store, by the hash of their ids.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::domain::code::MAX_ONE_TIME_CODE_ATTEMPTS;
use crate::domain::verification::{Verification, VerificationTaken, VerificationWanted};
use crate::domain::{Instant, SecretHash};
use crate::ports::*;

use super::{from_json, insert_error, to_json, unavailable, CachedStatements, SqliteStore};

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
