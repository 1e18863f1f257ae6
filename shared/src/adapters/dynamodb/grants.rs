//! Authorization codes in the codes table: `GRANT#sha256` items with the grant as `body`, TTL
//! on `expiresAt`, and a `used` flag that one conditional update sets, so exactly one redeemer
//! wins (S5) and a later one is told it replayed (S18).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::{body, get_n, n, s, sdk, ttl_seconds, DynamoStore};
use crate::domain::oauth::AuthorizationGrant;
use crate::domain::{Instant, SecretHash};
use crate::ports::{GrantStore, Redeemed, StoreError, StoreResult};

fn grant_key(hash: &SecretHash) -> AttributeValue {
    s(format!("GRANT#{}", hash.to_hex()))
}

#[async_trait]
impl GrantStore for DynamoStore {
    async fn insert_grant(&self, hash: &SecretHash, grant: &AuthorizationGrant) -> StoreResult<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.codes)
            .item("pk", grant_key(hash))
            .item("body", s(super::to_json(grant)?))
            .item("expiresAt", n(ttl_seconds(grant.expires_at)))
            .item("expiresAtMillis", n(grant.expires_at.as_millis()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Duplicate("grant"))
            }
            Err(e) => Err(sdk("PutItem", e)),
        }
    }

    async fn redeem_grant(
        &self,
        hash: &SecretHash,
        now: Instant,
    ) -> StoreResult<Redeemed<AuthorizationGrant>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.codes)
            .key("pk", grant_key(hash))
            .update_expression("SET used = :yes")
            .condition_expression(
                "attribute_exists(pk) AND expiresAtMillis > :now AND attribute_not_exists(used)",
            )
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":now", n(now.as_millis()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(out) => {
                return match out.attributes() {
                    Some(item) => Ok(Redeemed::Fresh(body(item)?)),
                    None => Ok(Redeemed::Nothing),
                }
            }
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                _ => return Err(sdk("UpdateItem", e)),
            },
        };
        // The condition failed: unknown (no item), expired (TTL lags), or used before.
        Ok(match old {
            Some(item)
                if get_n(&item, "expiresAtMillis").is_some_and(|at| at > now.as_millis()) =>
            {
                Redeemed::Replayed(body(&item)?)
            }
            _ => Redeemed::Nothing,
        })
    }
}
