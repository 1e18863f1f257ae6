//! Rate counters on the embedded store: fixed windows, one row per key and window.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::domain::Instant;
use crate::ports::*;

use super::{unavailable, CachedStatements, SqliteStore};

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
