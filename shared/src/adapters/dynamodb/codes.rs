//! Passwordless codes in the codes table (`CODE#sha256`): stored with the user's pointer in
//! one transaction, taken by one conditional write, tries counted before they are compared.

use super::*;

impl DynamoStore {
    pub(super) fn code_from_item(item: &Item) -> StoreResult<PasswordlessCode> {
        let mut code: PasswordlessCode = body(item)?;
        code.emailed = get_bool(item, "emailed").unwrap_or(code.emailed);
        code.failed_attempts = get_n(item, "failedAttempts")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(code.failed_attempts);
        Ok(code)
    }

    /// Whether the user's item still lets `code` log in: an API-started code must be the
    /// current one (S6); a bound code must be no older than the last API start or login.
    pub(super) fn code_still_valid(user: &Item, code: &PasswordlessCode) -> bool {
        if code.browser_binding.is_some() {
            get_n(user, "codesValidFrom").is_none_or(|from| code.insert_instant.as_millis() >= from)
        } else {
            get_s(user, "currentCode") == Some(code.code_hash.to_hex().as_str())
        }
    }

    /// The `tenantId = :tenant` part of a code's condition, when the caller is scoped (X7).
    pub(super) fn tenant_condition(
        tenant: Option<TenantId>,
    ) -> (&'static str, Option<AttributeValue>) {
        match tenant {
            Some(t) => (" AND tenantId = :tenant", Some(s(t.to_string()))),
            None => ("", None),
        }
    }

    /// A code presented without a one-time code: one conditional delete takes it, so exactly
    /// one of any number of racers wins (S5). A code that wants a one-time code stays, and the
    /// try counts against it.
    pub(super) async fn consume_link_code(
        &self,
        hash: &SecretHash,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Consumed> {
        let (tenant_condition, tenant_value) = Self::tenant_condition(tenant);
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.codes)
            .key("pk", code_key(hash))
            .condition_expression(format!(
                "attribute_exists(pk) AND expiresAtMillis > :now AND attribute_not_exists(oneTimeCode) AND attribute_not_exists(browserBinding){tenant_condition}"
            ))
            .set_expression_attribute_values(Some(Self::values(now, tenant_value)))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(out) => {
                return out
                    .attributes()
                    .map(|item| Self::code_from_item(item).map(|c| Consumed::Code(Box::new(c))))
                    .unwrap_or(Ok(Consumed::Nothing))
            }
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                _ => return Err(sdk("DeleteItem", e)),
            },
        };
        let Some(old) = old else {
            return Ok(Consumed::Nothing);
        };
        let live = get_n(&old, "expiresAtMillis").is_some_and(|at| at > now.as_millis());
        let in_tenant =
            tenant.is_none_or(|t| get_s(&old, "tenantId") == Some(t.to_string().as_str()));
        if !live || !in_tenant || !old.contains_key("oneTimeCode") {
            return Ok(Consumed::Nothing);
        }
        // A missing one-time code is a wrong one: it counts (S7), on a code the API may take.
        match self.count_one_time_try(hash, None, tenant, now).await? {
            Some(code) => {
                self.burn_if_spent(&code).await?;
                Ok(Consumed::WrongOneTimeCode { user: code.user_id })
            }
            None => Ok(Consumed::Nothing),
        }
    }

    /// A code opened in the browser bound to it: one conditional delete that names the binding,
    /// so only that browser takes it, once (S5, S14); nothing is counted otherwise.
    pub(super) async fn consume_bound_code(
        &self,
        hash: &SecretHash,
        binding: &SecretHash,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Consumed> {
        let (tenant_condition, tenant_value) = Self::tenant_condition(tenant);
        let mut values = Self::values(now, tenant_value);
        values.insert(":binding".into(), s(binding.to_hex()));
        let result = self
            .client
            .delete_item()
            .table_name(&self.tables.codes)
            .key("pk", code_key(hash))
            .condition_expression(format!(
                "attribute_exists(pk) AND expiresAtMillis > :now AND browserBinding = :binding{tenant_condition}"
            ))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes()
                .map(|item| Self::code_from_item(item).map(|c| Consumed::Code(Box::new(c))))
                .unwrap_or(Ok(Consumed::Nothing)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Consumed::Nothing)
            }
            Err(e) => Err(sdk("DeleteItem", e)),
        }
    }

    /// A code presented with a one-time code. The try is counted first, in one conditional
    /// update that also refuses a code out of tries, and compared after: concurrent guesses
    /// cannot outrun the limit (S7, L1). A right guess then takes the code with a conditional
    /// delete, so one racer wins (S5).
    pub(super) async fn consume_with_one_time_code(
        &self,
        hash: &SecretHash,
        given: &SecretHash,
        binding: Option<&SecretHash>,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Consumed> {
        let Some(code) = self.count_one_time_try(hash, binding, tenant, now).await? else {
            return Ok(Consumed::Nothing);
        };
        let Some(expected) = code.one_time_code_hash else {
            // A link-only code presented with a one-time code: the code alone proves nothing
            // more, and FusionAuth ignores the extra field, so it is taken as a link login.
            return self.consume_link_code(hash, tenant, now).await;
        };
        if !given.matches(&expected) {
            self.burn_if_spent(&code).await?;
            return Ok(Consumed::WrongOneTimeCode { user: code.user_id });
        }
        let taken = self
            .client
            .delete_item()
            .table_name(&self.tables.codes)
            .key("pk", code_key(hash))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match taken {
            Ok(out) if out.attributes().is_some() => Ok(Consumed::Code(Box::new(code))),
            Ok(_) => Ok(Consumed::Nothing),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Consumed::Nothing)
            }
            Err(e) => Err(sdk("DeleteItem", e)),
        }
    }

    /// Counts one try with a one-time code on a live code that has tries left, is of the tenant
    /// in scope and bound to `binding` (or to no browser when `None`), returning the code as
    /// counted; `None` when there is no such code.
    pub(super) async fn count_one_time_try(
        &self,
        hash: &SecretHash,
        binding: Option<&SecretHash>,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Option<PasswordlessCode>> {
        let (tenant_condition, tenant_value) = Self::tenant_condition(tenant);
        let mut values = Self::values(now, tenant_value);
        values.insert(":one".into(), n(1));
        values.insert(":max".into(), n(i64::from(MAX_ONE_TIME_CODE_ATTEMPTS)));
        // Without a browser only an unbound code counts; in one, only a code bound to it (S14).
        let binding_condition = match binding {
            Some(binding) => {
                values.insert(":binding".into(), s(binding.to_hex()));
                " AND browserBinding = :binding"
            }
            None => " AND attribute_not_exists(browserBinding)",
        };
        let counted = self
            .client
            .update_item()
            .table_name(&self.tables.codes)
            .key("pk", code_key(hash))
            .update_expression("ADD failedAttempts :one")
            .condition_expression(format!(
                "attribute_exists(pk) AND expiresAtMillis > :now AND failedAttempts < :max{binding_condition}{tenant_condition}"
            ))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match counted {
            Ok(out) => out.attributes().map(Self::code_from_item).transpose(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk("UpdateItem", e)),
        }
    }

    /// Deletes a code whose last allowed try was just spent (S7).
    pub(super) async fn burn_if_spent(&self, code: &PasswordlessCode) -> StoreResult<()> {
        if code.failed_attempts < MAX_ONE_TIME_CODE_ATTEMPTS {
            return Ok(());
        }
        self.client
            .delete_item()
            .table_name(&self.tables.codes)
            .key("pk", code_key(&code.code_hash))
            .send()
            .await
            .map_err(|e| sdk("DeleteItem", e))?;
        Ok(())
    }

    /// `:now`, and `:tenant` when given: the values the code conditions share.
    pub(super) fn values(
        now: Instant,
        tenant: Option<AttributeValue>,
    ) -> HashMap<String, AttributeValue> {
        let mut values = HashMap::from([(":now".to_owned(), n(now.as_millis()))]);
        if let Some(tenant) = tenant {
            values.insert(":tenant".into(), tenant);
        }
        values
    }
}

#[async_trait]
impl CodeStore for DynamoStore {
    async fn insert_code(&self, code: &PasswordlessCode) -> StoreResult<()> {
        let mut put = Put::builder()
            .table_name(&self.tables.codes)
            .item("pk", code_key(&code.code_hash))
            .item("body", s(to_json(code)?))
            .item("userId", s(code.user_id.to_string()))
            .item("tenantId", s(code.tenant_id.to_string()))
            .item("expiresAt", n(ttl_seconds(code.expires_at)))
            .item("expiresAtMillis", n(code.expires_at.as_millis()))
            .item("failedAttempts", n(0))
            .item("emailed", AttributeValue::Bool(false))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(one_time) = &code.one_time_code_hash {
            put = put.item("oneTimeCode", s(one_time.to_hex()));
        }
        if let Some(binding) = &code.browser_binding {
            put = put.item("browserBinding", s(binding.to_hex()));
        }
        let user = if code.browser_binding.is_some() {
            // A bound code supersedes nothing (S31); the user must exist all the same.
            TransactWriteItem::builder()
                .condition_check(build(
                    "a user check",
                    ConditionCheck::builder()
                        .table_name(&self.tables.users)
                        .key("pk", user_key(code.user_id))
                        .condition_expression("attribute_exists(pk)")
                        .build(),
                )?)
                .build()
        } else {
            // Naming the code on the user makes every earlier code dead in the same write
            // (S6): the earlier API-started ones by the pointer, the bound ones by the instant.
            TransactWriteItem::builder()
                .update(build(
                    "a user pointer",
                    Update::builder()
                        .table_name(&self.tables.users)
                        .key("pk", user_key(code.user_id))
                        .update_expression("SET currentCode = :c, codesValidFrom = :from")
                        .condition_expression("attribute_exists(pk)")
                        .expression_attribute_values(":c", s(code.code_hash.to_hex()))
                        .expression_attribute_values(":from", n(code.insert_instant.as_millis()))
                        .build(),
                )?)
                .build()
        };
        let items = vec![
            TransactWriteItem::builder()
                .put(build("a code", put.build())?)
                .build(),
            user,
        ];
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match cancelled_items(&e) {
                Some(failed) if failed.get(1) == Some(&true) => Err(StoreError::Missing),
                Some(_) => Err(StoreError::Duplicate("code")),
                None => Err(sdk("TransactWriteItems", e)),
            },
        }
    }

    async fn code(&self, hash: &SecretHash, now: Instant) -> StoreResult<Option<PasswordlessCode>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.codes)
            .key("pk", code_key(hash))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        let Some(code) = out
            .item()
            .map(Self::code_from_item)
            .transpose()?
            .filter(|c| c.is_live(now))
        else {
            return Ok(None);
        };
        // A superseded code reads as absent (S6).
        let user = self
            .client
            .get_item()
            .table_name(&self.tables.users)
            .key("pk", user_key(code.user_id))
            .projection_expression("currentCode, codesValidFrom")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        let valid = user
            .item()
            .is_some_and(|item| Self::code_still_valid(item, &code));
        Ok(valid.then_some(code))
    }

    async fn mark_code_emailed(&self, hash: &SecretHash) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.codes)
            .key("pk", code_key(hash))
            .update_expression("SET emailed = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Consumed in the meantime: nothing left to mark.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk("UpdateItem", e)),
        }
    }

    async fn consume_code(
        &self,
        hash: &SecretHash,
        proof: Proof<'_>,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Consumed> {
        match proof {
            Proof::Link => self.consume_link_code(hash, tenant, now).await,
            Proof::OneTimeCode(given) => {
                self.consume_with_one_time_code(hash, given, None, tenant, now)
                    .await
            }
            Proof::BoundOneTimeCode { typed, binding } => {
                self.consume_with_one_time_code(hash, typed, Some(binding), tenant, now)
                    .await
            }
            Proof::BoundBrowser(binding) => {
                self.consume_bound_code(hash, binding, tenant, now).await
            }
        }
    }

    async fn finish_login(
        &self,
        user: UserId,
        code: &PasswordlessCode,
        application: ApplicationId,
        now: Instant,
    ) -> StoreResult<LoginFinish> {
        let hash = code.code_hash.to_hex();
        let bound = code.browser_binding.is_some();
        // Every other code of the user ends with this login: the API-started one with the
        // pointer, the bound ones with the instant.
        let mut set =
            "SET lastLoginInstant = :now, registrationLogins.#app = :now, codesValidFrom = :now"
                .to_owned();
        if code.emailed {
            set.push_str(", verified = :yes");
        }
        let still_valid = if bound {
            "(attribute_not_exists(codesValidFrom) OR codesValidFrom <= :inserted)"
        } else {
            "currentCode = :code"
        };
        let mut values = HashMap::from([
            (":now".to_owned(), n(now.as_millis())),
            (":yes".to_owned(), AttributeValue::Bool(true)),
        ]);
        if bound {
            values.insert(":inserted".into(), n(code.insert_instant.as_millis()));
        } else {
            values.insert(":code".into(), s(hash.clone()));
        }
        // One conditional update: the code still valid, the user may log in; then record it.
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.users)
            .key("pk", user_key(user))
            .update_expression(format!("{set} REMOVE currentCode"))
            .condition_expression(format!("{still_valid} AND active = :yes AND (attribute_not_exists(expiry) OR expiry > :now)"))
            .expression_attribute_names("#app", application.to_string())
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(out) => {
                let item = out.attributes().ok_or_else(|| StoreError::Corrupt("UpdateItem returned no user".into()))?;
                return Ok(LoginFinish::Completed(Self::user_from_item(item)?));
            }
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => c.item().cloned(),
                _ => return Err(sdk("UpdateItem", e)),
            },
        };
        let Some(old) = old else {
            return Ok(LoginFinish::Superseded);
        };
        if !Self::code_still_valid(&old, code) {
            return Ok(LoginFinish::Superseded);
        }
        if bound {
            // Consuming took the code; nothing of the user's points at it.
            return Ok(LoginFinish::Refused(Self::user_from_item(&old)?));
        }
        // The code was current but the user may not log in: spend the code all the same.
        let cleared = self
            .client
            .update_item()
            .table_name(&self.tables.users)
            .key("pk", user_key(user))
            .update_expression("REMOVE currentCode")
            .condition_expression("currentCode = :code")
            .expression_attribute_values(":code", s(hash))
            .send()
            .await;
        match cleared {
            Ok(_) => Ok(LoginFinish::Refused(Self::user_from_item(&old)?)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(LoginFinish::Superseded)
            }
            Err(e) => Err(sdk("UpdateItem", e)),
        }
    }
}
