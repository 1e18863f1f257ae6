//! Refresh tokens in the codes table: `REFRESH#sha256` items (the token as `body`, TTL on
//! `expiresAt`, `rotated` once used) and `FAMILY#id` items that mark a family revoked. A
//! rotation is one transaction: the old token marked rotated on condition it was not, the
//! family checked unrevoked, the successor put.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};

use super::{body, build, n, s, sdk, ttl_seconds, DynamoStore, Item};
use crate::domain::ids::RefreshTokenId;
use crate::domain::{Instant, SecretHash};
use crate::ports::{RefreshTokenStore, Rotation, StoreResult, StoredRefreshToken};

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
}
