//! Authorization grants on the embedded store: redeemed once.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::domain::oauth::AuthorizationGrant;
use crate::domain::{Instant, SecretHash};
use crate::ports::*;

use super::{from_json, insert_error, to_json, unavailable, CachedStatements, SqliteStore};

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
