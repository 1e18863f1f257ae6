//! Two-factor records. A user's secrets are a `TWOFACTOR#id` item in the users table, saved by
//! a conditional put on its `version`; pending steps (`TFSTEP#sha256`) and trusted browsers
//! (`TFTRUST#sha256`) are in the codes table with TTL on `expiresAt`. A wrong code is counted
//! by one conditional update and a step is taken by one conditional delete (S5, S7).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{body, get_n, n, s, sdk, ttl_seconds, DynamoStore, Item};
use crate::domain::two_factor::{
    TwoFactorChallenge, TwoFactorSecrets, TwoFactorTrust, MAX_CHALLENGE_FAILURES,
};
use crate::domain::{Instant, SecretHash, UserId};
use crate::ports::{StoreError, StoreResult, TwoFactorStore};

pub(super) fn secrets_key(user: UserId) -> AttributeValue {
    s(format!("TWOFACTOR#{user}"))
}

fn challenge_key(hash: &SecretHash) -> AttributeValue {
    s(format!("TFSTEP#{}", hash.to_hex()))
}

fn trust_key(hash: &SecretHash) -> AttributeValue {
    s(format!("TFTRUST#{}", hash.to_hex()))
}

fn challenge_from_item(item: &Item) -> StoreResult<TwoFactorChallenge> {
    let mut challenge: TwoFactorChallenge = body(item)?;
    challenge.failed_attempts = get_n(item, "failedAttempts")
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(challenge.failed_attempts);
    Ok(challenge)
}

fn conditional_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

#[async_trait]
impl TwoFactorStore for DynamoStore {
    async fn two_factor_secrets(&self, user: UserId) -> StoreResult<Option<TwoFactorSecrets>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.users)
            .key("pk", secrets_key(user))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        out.item().map(body).transpose()
    }

    async fn save_two_factor_secrets(&self, secrets: &TwoFactorSecrets) -> StoreResult<bool> {
        let version = i64::try_from(secrets.version).unwrap_or(i64::MAX);
        let mut put = self
            .client
            .put_item()
            .table_name(&self.tables.users)
            .item("pk", secrets_key(secrets.user_id))
            .item("body", s(super::to_json(secrets)?))
            .item("version", n(version));
        put = if version <= 1 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :previous")
                .expression_attribute_values(":previous", n(version - 1))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if conditional_failed(&e) => Ok(false),
            Err(e) => Err(sdk("PutItem", e)),
        }
    }

    async fn put_two_factor_challenge(&self, challenge: &TwoFactorChallenge) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.codes)
            .item("pk", challenge_key(&challenge.id_hash))
            .item("body", s(super::to_json(challenge)?))
            .item("expiresAt", n(ttl_seconds(challenge.expires_at)))
            .item("expiresAtMillis", n(challenge.expires_at.as_millis()))
            .item("failedAttempts", n(i64::from(challenge.failed_attempts)))
            .send()
            .await
            .map_err(|e| sdk("PutItem", e))?;
        Ok(())
    }

    async fn two_factor_challenge(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorChallenge>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.codes)
            .key("pk", challenge_key(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        Ok(out
            .item()
            .map(challenge_from_item)
            .transpose()?
            .filter(|c| c.is_live(now)))
    }

    async fn fail_two_factor_challenge(&self, id: &SecretHash, now: Instant) -> StoreResult<bool> {
        let counted = self
            .client
            .update_item()
            .table_name(&self.tables.codes)
            .key("pk", challenge_key(id))
            .update_expression("ADD failedAttempts :one")
            .condition_expression(
                "attribute_exists(pk) AND expiresAtMillis > :now AND failedAttempts < :max",
            )
            .expression_attribute_values(":now", n(now.as_millis()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(i64::from(MAX_CHALLENGE_FAILURES)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match counted {
            Ok(out) => out.attributes().cloned().unwrap_or_default(),
            Err(e) if conditional_failed(&e) => return Ok(false),
            Err(e) => return Err(sdk("UpdateItem", e)),
        };
        if get_n(&item, "failedAttempts").unwrap_or(0) >= i64::from(MAX_CHALLENGE_FAILURES) {
            // Out of tries: gone for good (reads refuse it already; this keeps the table small).
            self.client
                .delete_item()
                .table_name(&self.tables.codes)
                .key("pk", challenge_key(id))
                .send()
                .await
                .map_err(|e| sdk("DeleteItem", e))?;
        }
        Ok(true)
    }

    async fn take_two_factor_challenge(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorChallenge>> {
        let taken = self
            .client
            .delete_item()
            .table_name(&self.tables.codes)
            .key("pk", challenge_key(id))
            .condition_expression(
                "attribute_exists(pk) AND expiresAtMillis > :now AND failedAttempts < :max",
            )
            .expression_attribute_values(":now", n(now.as_millis()))
            .expression_attribute_values(":max", n(i64::from(MAX_CHALLENGE_FAILURES)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match taken {
            Ok(out) => out.attributes().map(challenge_from_item).transpose(),
            Err(e) if conditional_failed(&e) => Ok(None),
            Err(e) => Err(sdk("DeleteItem", e)),
        }
    }

    async fn insert_two_factor_trust(&self, trust: &TwoFactorTrust) -> StoreResult<()> {
        match self
            .client
            .put_item()
            .table_name(&self.tables.codes)
            .item("pk", trust_key(&trust.id_hash))
            .item("body", s(super::to_json(trust)?))
            .item("expiresAt", n(ttl_seconds(trust.expires_at)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if conditional_failed(&e) => Err(StoreError::Duplicate("twoFactorTrust")),
            Err(e) => Err(sdk("PutItem", e)),
        }
    }

    async fn two_factor_trust(
        &self,
        id: &SecretHash,
        now: Instant,
    ) -> StoreResult<Option<TwoFactorTrust>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.codes)
            .key("pk", trust_key(id))
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        Ok(out
            .item()
            .map(body::<TwoFactorTrust>)
            .transpose()?
            .filter(|t| t.is_live(now)))
    }
}
