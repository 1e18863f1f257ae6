//! Email and registration verifications in the codes table: `VERIFY#sha256` items with the
//! verification as `body`, TTL on `expiresAt`, the one-time code's hash and the tries as
//! attributes, so that a try is counted by one conditional update before it is compared (S7)
//! and a verification is taken by one conditional delete (S5). Its kind and tenant are
//! attributes too, so that a request takes only what it asks for (N17).

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;

use super::{body, get_n, n, s, sdk, ttl_seconds, DynamoStore, Item};
use crate::domain::code::MAX_ONE_TIME_CODE_ATTEMPTS;
use crate::domain::verification::{Verification, VerificationTaken, VerificationWanted};
use crate::domain::{Instant, SecretHash};
use crate::ports::{StoreError, StoreResult, VerificationStore};

fn verification_key(hash: &SecretHash) -> AttributeValue {
    s(format!("VERIFY#{}", hash.to_hex()))
}

/// The condition that the item is of the kind (and tenant) `wanted` names, its values added.
fn wanted_condition(
    wanted: VerificationWanted,
    values: &mut HashMap<String, AttributeValue>,
) -> String {
    values.insert(":kind".to_owned(), s(wanted.kind.to_owned()));
    let mut condition = " AND purposeKind = :kind".to_owned();
    if let Some(tenant) = wanted.tenant {
        values.insert(":tenant".to_owned(), s(tenant.to_string()));
        condition.push_str(" AND tenantId = :tenant");
    }
    condition
}

fn from_item(item: &Item) -> StoreResult<Verification> {
    let mut verification: Verification = body(item)?;
    verification.failed_attempts = get_n(item, "failedAttempts")
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(verification.failed_attempts);
    Ok(verification)
}

impl DynamoStore {
    /// Deletes the verification if `condition` holds: `Ok(Some(old))` when this call took it,
    /// `Ok(None)` with the item as it was (if any) when the condition failed.
    async fn delete_verification_if(
        &self,
        hash: &SecretHash,
        condition: &str,
        wanted: VerificationWanted,
        now: Instant,
    ) -> StoreResult<Result<Item, Option<Item>>> {
        let mut values = HashMap::from([(":now".to_owned(), n(now.as_millis()))]);
        let wanted_condition = wanted_condition(wanted, &mut values);
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.codes)
            .key("pk", verification_key(hash))
            .condition_expression(format!("{condition}{wanted_condition}"))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes().cloned().ok_or(None)),
            Err(e) => match e.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Err(c.item().cloned()))
                }
                _ => Err(sdk("DeleteItem", e)),
            },
        }
    }
}

#[async_trait]
impl VerificationStore for DynamoStore {
    async fn insert_verification(&self, verification: &Verification) -> StoreResult<()> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.tables.codes)
            .item("pk", verification_key(&verification.id_hash))
            .item("body", s(super::to_json(verification)?))
            .item("expiresAt", n(ttl_seconds(verification.expires_at)))
            .item("expiresAtMillis", n(verification.expires_at.as_millis()))
            .item("failedAttempts", n(0))
            .item(
                "purposeKind",
                s(verification.purpose.kind_name().to_owned()),
            )
            .item("tenantId", s(verification.tenant_id.to_string()))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(one_time) = &verification.one_time_code_hash {
            put = put.item("oneTimeCode", s(one_time.to_hex()));
        }
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Duplicate("verification"))
            }
            Err(e) => Err(sdk("PutItem", e)),
        }
    }

    async fn take_verification(
        &self,
        id: &SecretHash,
        one_time_code: Option<&SecretHash>,
        wanted: VerificationWanted,
        now: Instant,
    ) -> StoreResult<VerificationTaken> {
        let Some(given) = one_time_code else {
            // The id alone takes only a verification that has no one-time code.
            let taken = self
                .delete_verification_if(
                    id,
                    "attribute_exists(pk) AND expiresAtMillis > :now AND attribute_not_exists(oneTimeCode)",
                    wanted,
                    now,
                )
                .await?;
            return Ok(match taken {
                Ok(item) => VerificationTaken::Taken(Box::new(from_item(&item)?)),
                Err(Some(old))
                    if old.contains_key("oneTimeCode")
                        && get_n(&old, "expiresAtMillis")
                            .is_some_and(|at| at > now.as_millis())
                        && from_item(&old).is_ok_and(|v| wanted.holds(&v)) =>
                {
                    VerificationTaken::WrongOneTimeCode { missing: true }
                }
                Err(_) => VerificationTaken::Nothing,
            });
        };
        // The try counts first, in one conditional update that also refuses a verification
        // out of tries: concurrent guesses cannot outrun the limit (S7).
        let mut values = HashMap::from([
            (":now".to_owned(), n(now.as_millis())),
            (":one".to_owned(), n(1)),
            (":max".to_owned(), n(i64::from(MAX_ONE_TIME_CODE_ATTEMPTS))),
        ]);
        let wanted_condition = wanted_condition(wanted, &mut values);
        let counted = self
            .client
            .update_item()
            .table_name(&self.tables.codes)
            .key("pk", verification_key(id))
            .update_expression("ADD failedAttempts :one")
            .condition_expression(format!(
                "attribute_exists(pk) AND expiresAtMillis > :now AND failedAttempts < :max{wanted_condition}"
            ))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match counted {
            Ok(out) => match out.attributes() {
                Some(item) => item.clone(),
                None => return Ok(VerificationTaken::Nothing),
            },
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                return Ok(VerificationTaken::Nothing)
            }
            Err(e) => return Err(sdk("UpdateItem", e)),
        };
        let verification = from_item(&item)?;
        // A verification without a one-time code is taken by its id; the extra field changes
        // nothing.
        let right = verification
            .one_time_code_hash
            .is_none_or(|expected| given.matches(&expected));
        if !right {
            if verification.failed_attempts >= MAX_ONE_TIME_CODE_ATTEMPTS {
                // Whoever else deleted it first: gone either way.
                let _spent = self
                    .delete_verification_if(id, "attribute_exists(pk)", wanted, now)
                    .await?;
            }
            return Ok(VerificationTaken::WrongOneTimeCode { missing: false });
        }
        // Of two right guesses racing, one conditional delete wins (S5).
        Ok(
            match self
                .delete_verification_if(id, "attribute_exists(pk)", wanted, now)
                .await?
            {
                Ok(_) => VerificationTaken::Taken(Box::new(verification)),
                Err(_) => VerificationTaken::Nothing,
            },
        )
    }
}
