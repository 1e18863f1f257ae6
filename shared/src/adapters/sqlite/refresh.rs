//! Refresh tokens on the embedded store: rotated once, revoked by family.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::domain::ids::RefreshTokenId;
use crate::domain::{Instant, SecretHash};
use crate::ports::*;

use super::{from_json, insert_error, to_json, unavailable, CachedStatements, SqliteStore};

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
