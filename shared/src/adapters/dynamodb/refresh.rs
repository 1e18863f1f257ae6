//! Refresh tokens in the codes table: `REFRESH#sha256` items (the token as `body`, TTL on
//! `expiresAt`, `rotated` once used) and `FAMILY#id` items that mark a family revoked. A
//! rotation is one transaction: the old token marked rotated on condition it was not, the
//! family checked unrevoked, the successor put.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};

use super::{body, build, n, s, sdk, ttl_seconds, DynamoStore, Item};
use crate::domain::ids::RefreshTokenId;
use crate::domain::{Instant, SecretHash};
use std::collections::HashMap;

use crate::ports::{
    RefreshTokenFilter, RefreshTokenStore, Rotation, StoreResult, StoredRefreshToken,
};

/// The sparse index of refresh tokens by user, and its key attribute.
pub(super) const USER_INDEX: &str = "refreshTokensByUser";
pub(super) const USER_INDEX_KEY: &str = "refreshUserId";

fn token_key(hash: &SecretHash) -> AttributeValue {
    s(format!("REFRESH#{}", hash.to_hex()))
}

fn family_key(family: RefreshTokenId) -> AttributeValue {
    s(format!("FAMILY#{family}"))
}

impl DynamoStore {
    async fn refresh_item(&self, key: AttributeValue) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.codes)
            .key("pk", key)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        Ok(out.item().cloned())
    }

    /// Every refresh-token item `filter` may select: one user's from the index, else all.
    async fn refresh_items(
        &self,
        filter: RefreshTokenFilter,
        now: Instant,
    ) -> StoreResult<Vec<Item>> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (items, last) = match filter {
                RefreshTokenFilter::User(user) => {
                    let out = self
                        .client
                        .query()
                        .table_name(&self.tables.codes)
                        .index_name(USER_INDEX)
                        .key_condition_expression("#k = :v")
                        .expression_attribute_names("#k", USER_INDEX_KEY)
                        .expression_attribute_values(":v", s(user.to_string()))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|e| sdk("Query", e))?;
                    (out.items, out.last_evaluated_key)
                }
                _ => {
                    let out = self
                        .client
                        .scan()
                        .table_name(&self.tables.codes)
                        .filter_expression("begins_with(pk, :refresh) AND expiresAt > :now")
                        .expression_attribute_values(":refresh", s("REFRESH#".to_owned()))
                        .expression_attribute_values(":now", n(now.as_secs()))
                        .set_exclusive_start_key(start.take())
                        .send()
                        .await
                        .map_err(|e| sdk("Scan", e))?;
                    (out.items, out.last_evaluated_key)
                }
            };
            found.extend(items.unwrap_or_default());
            match last {
                Some(key) => start = Some(key),
                None => return Ok(found),
            }
        }
    }

    /// An unexpired token of a family not revoked, with whether it was rotated.
    async fn live_refresh_token(
        &self,
        hash: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<(StoredRefreshToken, bool)>> {
        let Some(item) = self.refresh_item(token_key(hash)).await? else {
            return Ok(None);
        };
        let token: StoredRefreshToken = body(&item)?;
        if now >= token.expires_at {
            return Ok(None);
        }
        let revoked = self
            .refresh_item(family_key(token.family_id()))
            .await?
            .is_some_and(|family| family.contains_key("revoked"));
        let rotated = item.contains_key("rotated");
        Ok((!revoked).then_some((token, rotated)))
    }

    fn refresh_put(&self, token: &StoredRefreshToken) -> StoreResult<Put> {
        build(
            "a refresh token",
            Put::builder()
                .table_name(&self.tables.codes)
                .item("pk", token_key(&token.token_hash))
                .item("body", s(super::to_json(token)?))
                .item("userId", s(token.user_id.to_string()))
                // Only refresh tokens carry this: the key of the sparse by-user index.
                .item(USER_INDEX_KEY, s(token.user_id.to_string()))
                .item("expiresAt", n(ttl_seconds(token.expires_at)))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )
    }
}

#[async_trait]
impl RefreshTokenStore for DynamoStore {
    async fn insert_refresh_token(&self, token: &StoredRefreshToken) -> StoreResult<()> {
        let put = self.refresh_put(token)?;
        self.client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk("PutItem", e))?;
        Ok(())
    }

    async fn refresh_token(
        &self,
        hash: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<StoredRefreshToken>> {
        Ok(self
            .live_refresh_token(hash, now)
            .await?
            .map(|(token, rotated)| StoredRefreshToken { rotated, ..token }))
    }

    async fn rotate_refresh_token(
        &self,
        old: &SecretHash,
        successor: &StoredRefreshToken,
        now: Instant,
    ) -> StoreResult<Rotation> {
        let Some((token, rotated)) = self.live_refresh_token(old, now).await? else {
            return Ok(Rotation::Nothing);
        };
        if rotated {
            return Ok(Rotation::Reused(StoredRefreshToken { rotated, ..token }));
        }
        let mark = Update::builder()
            .table_name(&self.tables.codes)
            .key("pk", token_key(old))
            .update_expression("SET rotated = :yes")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(rotated)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .build();
        let unrevoked = ConditionCheck::builder()
            .table_name(&self.tables.codes)
            .key("pk", family_key(token.family_id()))
            .condition_expression("attribute_not_exists(revoked)")
            .build();
        let put = self.refresh_put(successor)?;
        let items = vec![
            TransactWriteItem::builder()
                .update(build("a rotation", mark)?)
                .build(),
            TransactWriteItem::builder()
                .condition_check(build("a family check", unrevoked)?)
                .build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Rotation::Rotated(token)),
            // Another rotation won, or the family was revoked meanwhile: read what holds now.
            Err(e) if super::cancelled_items(&e).is_some() => {
                match self.live_refresh_token(old, now).await? {
                    Some((token, true)) => Ok(Rotation::Reused(StoredRefreshToken {
                        rotated: true,
                        ..token
                    })),
                    _ => Ok(Rotation::Nothing),
                }
            }
            Err(e) => Err(sdk("TransactWriteItems", e)),
        }
    }

    async fn revoke_refresh_family(&self, family: RefreshTokenId) -> StoreResult<()> {
        self.client
            .update_item()
            .table_name(&self.tables.codes)
            .key("pk", family_key(family))
            .update_expression("SET revoked = :yes")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| sdk("UpdateItem", e))?;
        Ok(())
    }

    async fn live_refresh_tokens(
        &self,
        filter: RefreshTokenFilter,
        now: Instant,
    ) -> StoreResult<Vec<StoredRefreshToken>> {
        let mut revoked: HashMap<RefreshTokenId, bool> = HashMap::new();
        let mut live = Vec::new();
        for item in self.refresh_items(filter, now).await? {
            let token: StoredRefreshToken = body(&item)?;
            if now >= token.expires_at || item.contains_key("rotated") || !filter.selects(&token) {
                continue;
            }
            let family = token.family_id();
            let family_revoked = match revoked.get(&family) {
                Some(known) => *known,
                None => {
                    let known = self
                        .refresh_item(family_key(family))
                        .await?
                        .is_some_and(|f| f.contains_key("revoked"));
                    revoked.insert(family, known);
                    known
                }
            };
            if !family_revoked {
                live.push(token);
            }
        }
        live.sort_by_key(|t| t.start_instant);
        Ok(live)
    }
}
