//! Rate counters in the codes table: `RATE#key#window` items, one atomic `ADD` a hit, kept
//! by TTL through the window after theirs (a caller may count the one before).

use super::*;

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn hit(&self, key: &str, window_seconds: i64, now: Instant) -> StoreResult<u32> {
        let (window_start, window_end) = now.window(window_seconds);
        let kept_until = window_end.plus_secs(window_end.as_secs() - window_start.as_secs());
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.codes)
            .key("pk", s(format!("RATE#{key}#{}", window_start.as_millis())))
            .update_expression("ADD hits :one SET expiresAt = :expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(ttl_seconds(kept_until)))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk("UpdateItem", e))?;
        let hits = out.attributes().and_then(|a| get_n(a, "hits")).unwrap_or(1);
        Ok(u32::try_from(hits).unwrap_or(u32::MAX))
    }

    async fn count(&self, key: &str, window_seconds: i64, now: Instant) -> StoreResult<u32> {
        let (window_start, _) = now.window(window_seconds);
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.codes)
            .key("pk", s(format!("RATE#{key}#{}", window_start.as_millis())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        let hits = out.item().and_then(|a| get_n(a, "hits")).unwrap_or(0);
        Ok(u32::try_from(hits).unwrap_or(u32::MAX))
    }
}
