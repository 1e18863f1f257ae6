//! The DynamoDB store. Three tables, each shaped for its access patterns (README, "Table
//! design"):
//!
//! - `config` (`pk`, `sk`): tenants, applications, email templates, signing keys and API keys,
//!   one partition per kind. Read-mostly; reads are cached per warm instance for a few seconds.
//! - `users` (`pk`): `USER#id` items, plus `EMAIL#tenant#email` and `USERNAME#tenant#name` guard
//!   items that make uniqueness a transaction; GSIs `byEmail` and `byUsername` find a user in
//!   one query. The user's current code and login state are top-level attributes, so that a
//!   login is one conditional update.
//! - `codes` (`pk`, TTL on `expiresAt`): `CODE#hash`, `REFRESH#hash` (with `FAMILY#id` items
//!   marking revoked families), `GRANT#hash` (authorization codes) and `RATE#key#window`.
//!   TTL deletion lags, so every read checks expiry itself.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

use crate::domain::code::{PasswordlessCode, MAX_ONE_TIME_CODE_ATTEMPTS};
use crate::domain::ids::{ApplicationId, TemplateId, TenantId, UserId};
use crate::domain::tenant::DEFAULT_TENANT_ID;
use crate::domain::user::normalize_login_id;
use crate::domain::{
    ApiKey, Application, EmailTemplate, Instant, KeyId, SecretHash, SigningKey, Tenant, User,
};
use crate::ports::*;

type Item = HashMap<String, AttributeValue>;

/// The three table names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub config: String,
    pub users: String,
    pub codes: String,
}

impl Tables {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            config: format!("{prefix}-config"),
            users: format!("{prefix}-users"),
            codes: format!("{prefix}-codes"),
        }
    }
}

/// How long a warm instance trusts a configuration read (tenants, applications, templates,
/// keys). Writes through this instance invalidate at once; other instances see changes after it.
const CONFIG_CACHE_TTL: Duration = Duration::from_secs(10);

/// At most this many configuration reads are remembered per instance (L4).
const CONFIG_CACHE_CAPACITY: usize = 1024;

mod cache;
mod grants;
mod refresh;
use cache::ConfigCache;

pub struct DynamoStore {
    client: Client,
    tables: Tables,
    cache: ConfigCache,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn get_bool(item: &Item, name: &str) -> Option<bool> {
    item.get(name).and_then(|v| v.as_bool().ok()).copied()
}

fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn body<T: DeserializeOwned>(item: &Item) -> StoreResult<T> {
    from_json(get_s(item, "body").ok_or_else(|| StoreError::Corrupt("an item has no body".into()))?)
}

/// Throttling, timeouts and service errors become `Unavailable` with the SDK's own words; the
/// SDK's standard retry policy (bounded attempts with backoff) has already run.
fn sdk<E: std::error::Error + Send + Sync + 'static>(
    operation: &str,
    e: SdkError<E>,
) -> StoreError {
    StoreError::Unavailable(format!(
        "DynamoDB {operation}: {}",
        aws_sdk_dynamodb::error::DisplayErrorContext(e)
    ))
}

fn build<T>(what: &str, result: Result<T, aws_sdk_dynamodb::error::BuildError>) -> StoreResult<T> {
    result.map_err(|e| StoreError::Unavailable(format!("building {what}: {e}")))
}

/// Whether a transaction was cancelled, and which of its items' conditions failed.
fn cancelled_items<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<bool>> {
    match e.as_service_error()? {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
            Some(c.cancellation_reasons().iter().map(|r| r.code() == Some("ConditionalCheckFailed")).collect())
        }
        _ => None,
    }
}

const USER: &str = "USER#";

fn user_key(id: UserId) -> AttributeValue {
    s(format!("{USER}{id}"))
}

/// `tenant#login-id`, normalized: the key of the email and username indexes and guards.
fn login_key(tenant: TenantId, login_id: &str) -> String {
    format!("{tenant}#{}", normalize_login_id(login_id))
}

fn code_key(hash: &SecretHash) -> AttributeValue {
    s(format!("CODE#{}", hash.to_hex()))
}

/// TTL wants epoch seconds; round up so an item is never swept before it expires.
fn ttl_seconds(at: Instant) -> i64 {
    (at.as_millis() + 999).div_euclid(1000)
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self {
            client,
            tables,
            cache: ConfigCache::new(CONFIG_CACHE_TTL, CONFIG_CACHE_CAPACITY),
        }
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// One cheap request, so the first TLS handshake happens during init, not on a user's request.
    pub async fn warm_up(&self) -> StoreResult<()> {
        self.client
            .describe_table()
            .table_name(&self.tables.config)
            .send()
            .await
            .map_err(|e| sdk("DescribeTable", e))?;
        Ok(())
    }

    /// Creates the three tables (on-demand billing, TTL on the codes table) if they are missing.
    pub async fn create_tables(&self) -> StoreResult<()> {
        let attr = |name: &str| {
            build(
                "an attribute",
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build(),
            )
        };
        let key = |name: &str, kind: KeyType| {
            build(
                "a key",
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build(),
            )
        };
        let exists = |e: &SdkError<aws_sdk_dynamodb::operation::create_table::CreateTableError>| {
            e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception())
        };
        let config = self
            .client
            .create_table()
            .table_name(&self.tables.config)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await;
        if let Err(e) = config {
            if !exists(&e) {
                return Err(sdk("CreateTable", e));
            }
        }
        let index = |name: &str, attribute: &str| -> StoreResult<GlobalSecondaryIndex> {
            build(
                "an index",
                GlobalSecondaryIndex::builder()
                    .index_name(name)
                    .key_schema(key(attribute, KeyType::Hash)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build(),
            )
        };
        let users = self
            .client
            .create_table()
            .table_name(&self.tables.users)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("emailKey")?)
            .attribute_definitions(attr("usernameKey")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .global_secondary_indexes(index("byEmail", "emailKey")?)
            .global_secondary_indexes(index("byUsername", "usernameKey")?)
            .send()
            .await;
        if let Err(e) = users {
            if !exists(&e) {
                return Err(sdk("CreateTable", e));
            }
        }
        let codes = self
            .client
            .create_table()
            .table_name(&self.tables.codes)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .send()
            .await;
        if let Err(e) = codes {
            if !exists(&e) {
                return Err(sdk("CreateTable", e));
            }
        }
        let ttl = build(
            "a TTL specification",
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("expiresAt")
                .build(),
        )?;
        let enabled = self
            .client
            .update_time_to_live()
            .table_name(&self.tables.codes)
            .time_to_live_specification(ttl)
            .send()
            .await;
        if let Err(e) = enabled {
            // Enabling TTL twice is an error we can ignore.
            let already = e
                .as_service_error()
                .map(|s| s.to_string())
                .unwrap_or_default();
            if !already.contains("already enabled") {
                return Err(sdk("UpdateTimeToLive", e));
            }
        }
        Ok(())
    }

    fn cached(&self, kind: &'static str, id: &str) -> Option<Option<String>> {
        self.cache.get(kind, id, std::time::Instant::now())
    }

    fn remember(&self, kind: &'static str, id: &str, value: Option<String>) {
        self.cache.put(kind, id, value, std::time::Instant::now());
    }

    fn forget(&self, kind: &'static str, id: &str) {
        self.cache.forget(kind, id);
    }

    /// A config item's body, through the per-instance cache.
    async fn config_body(&self, kind: &'static str, id: String) -> StoreResult<Option<String>> {
        if let Some(hit) = self.cached(kind, &id) {
            return Ok(hit);
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.config)
            .key("pk", s(kind))
            .key("sk", s(id.clone()))
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        let value = out
            .item()
            .and_then(|item| get_s(item, "body"))
            .map(str::to_owned);
        self.remember(kind, &id, value.clone());
        Ok(value)
    }

    async fn config_get<T: DeserializeOwned>(
        &self,
        kind: &'static str,
        id: String,
    ) -> StoreResult<Option<T>> {
        self.config_body(kind, id)
            .await?
            .as_deref()
            .map(from_json)
            .transpose()
    }

    async fn config_all<T: DeserializeOwned>(&self, kind: &'static str) -> StoreResult<Vec<T>> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.tables.config)
                .key_condition_expression("pk = :kind")
                .expression_attribute_values(":kind", s(kind))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk("Query", e))?;
            for item in out.items() {
                found.push(body(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(found),
            }
        }
    }

    async fn config_put(
        &self,
        kind: &'static str,
        id: String,
        body: String,
        only_new: Option<&'static str>,
    ) -> StoreResult<()> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.tables.config)
            .item("pk", s(kind))
            .item("sk", s(id.clone()))
            .item("body", s(body));
        put = match only_new {
            Some(_) => put.condition_expression("attribute_not_exists(pk)"),
            None => put.condition_expression("attribute_exists(pk)"),
        };
        self.forget(kind, &id);
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                match only_new {
                    Some(field) => Err(StoreError::Duplicate(field)),
                    None => Err(StoreError::Missing),
                }
            }
            Err(e) => Err(sdk("PutItem", e)),
        }
    }

    /// A user item: the profile as JSON plus the attributes a login updates in place.
    fn user_item(user: &User, current_code: Option<&str>) -> StoreResult<Item> {
        let mut item = Item::new();
        item.insert("pk".into(), user_key(user.id));
        item.insert("body".into(), s(to_json(user)?));
        item.insert("tenantId".into(), s(user.tenant_id.to_string()));
        if let Some(email) = &user.email {
            item.insert("emailKey".into(), s(login_key(user.tenant_id, email)));
        }
        if let Some(username) = &user.username {
            item.insert("usernameKey".into(), s(login_key(user.tenant_id, username)));
        }
        if let Some(code) = current_code {
            item.insert("currentCode".into(), s(code));
        }
        item.insert("active".into(), AttributeValue::Bool(user.active));
        if let Some(expiry) = user.expiry {
            item.insert("expiry".into(), n(expiry.as_millis()));
        }
        item.insert("verified".into(), AttributeValue::Bool(user.verified));
        if let Some(at) = user.last_login_instant {
            item.insert("lastLoginInstant".into(), n(at.as_millis()));
        }
        let logins = user
            .registrations
            .iter()
            .filter_map(|r| {
                r.last_login_instant
                    .map(|at| (r.application_id.to_string(), n(at.as_millis())))
            })
            .collect();
        item.insert("registrationLogins".into(), AttributeValue::M(logins));
        Ok(item)
    }

    /// Reads a user item back: the JSON profile, overlaid with the in-place login attributes.
    fn user_from_item(item: &Item) -> StoreResult<User> {
        let mut user: User = body(item)?;
        if let Some(verified) = get_bool(item, "verified") {
            user.verified = verified;
        }
        if let Some(at) = get_n(item, "lastLoginInstant") {
            user.last_login_instant = Some(Instant::from_millis(at));
        }
        if let Some(AttributeValue::M(logins)) = item.get("registrationLogins") {
            for registration in &mut user.registrations {
                if let Some(at) = logins
                    .get(&registration.application_id.to_string())
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                {
                    registration.last_login_instant = Some(Instant::from_millis(at));
                }
            }
        }
        Ok(user)
    }

    async fn user_item_by_id(&self, id: UserId) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.users)
            .key("pk", user_key(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        Ok(out.item().cloned())
    }

    async fn user_by_index(
        &self,
        index: &str,
        attribute: &str,
        value: String,
    ) -> StoreResult<Option<User>> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.users)
            .index_name(index)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attribute)
            .expression_attribute_values(":v", s(value))
            .limit(1)
            .send()
            .await
            .map_err(|e| sdk("Query", e))?;
        out.items().first().map(Self::user_from_item).transpose()
    }

    fn code_from_item(item: &Item) -> StoreResult<PasswordlessCode> {
        let mut code: PasswordlessCode = body(item)?;
        code.emailed = get_bool(item, "emailed").unwrap_or(code.emailed);
        code.failed_attempts = get_n(item, "failedAttempts")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(code.failed_attempts);
        Ok(code)
    }

    /// Whether the user's item still lets `code` log in: an API-started code must be the
    /// current one (S6); a bound code must be no older than the last API start or login.
    fn code_still_valid(user: &Item, code: &PasswordlessCode) -> bool {
        if code.browser_binding.is_some() {
            get_n(user, "codesValidFrom").is_none_or(|from| code.insert_instant.as_millis() >= from)
        } else {
            get_s(user, "currentCode") == Some(code.code_hash.to_hex().as_str())
        }
    }

    /// The `tenantId = :tenant` part of a code's condition, when the caller is scoped (X7).
    fn tenant_condition(tenant: Option<TenantId>) -> (&'static str, Option<AttributeValue>) {
        match tenant {
            Some(t) => (" AND tenantId = :tenant", Some(s(t.to_string()))),
            None => ("", None),
        }
    }

    /// A code presented without a one-time code: one conditional delete takes it, so exactly
    /// one of any number of racers wins (S5). A code that wants a one-time code stays, and the
    /// try counts against it.
    async fn consume_link_code(
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
                "attribute_exists(pk) AND expiresAtMillis > :now AND attribute_not_exists(oneTimeCode){tenant_condition}"
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
        // A missing one-time code is a wrong one: it counts (S7).
        match self.count_one_time_try(hash, tenant, now).await? {
            Some(code) => {
                self.burn_if_spent(&code).await?;
                Ok(Consumed::WrongOneTimeCode { user: code.user_id })
            }
            None => Ok(Consumed::Nothing),
        }
    }

    /// A code opened in the browser bound to it: one conditional delete that names the binding,
    /// so only that browser takes it, once (S5, S14); nothing is counted otherwise.
    async fn consume_bound_code(
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
    async fn consume_with_one_time_code(
        &self,
        hash: &SecretHash,
        given: &SecretHash,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Consumed> {
        let Some(code) = self.count_one_time_try(hash, tenant, now).await? else {
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

    /// Counts one try with a one-time code on a live code that has tries left (and is of the
    /// tenant in scope), returning the code as counted; `None` when there is no such code.
    async fn count_one_time_try(
        &self,
        hash: &SecretHash,
        tenant: Option<TenantId>,
        now: Instant,
    ) -> StoreResult<Option<PasswordlessCode>> {
        let (tenant_condition, tenant_value) = Self::tenant_condition(tenant);
        let mut values = Self::values(now, tenant_value);
        values.insert(":one".into(), n(1));
        values.insert(":max".into(), n(i64::from(MAX_ONE_TIME_CODE_ATTEMPTS)));
        let counted = self
            .client
            .update_item()
            .table_name(&self.tables.codes)
            .key("pk", code_key(hash))
            .update_expression("ADD failedAttempts :one")
            .condition_expression(format!(
                "attribute_exists(pk) AND expiresAtMillis > :now AND failedAttempts < :max{tenant_condition}"
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
    async fn burn_if_spent(&self, code: &PasswordlessCode) -> StoreResult<()> {
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
    fn values(now: Instant, tenant: Option<AttributeValue>) -> HashMap<String, AttributeValue> {
        let mut values = HashMap::from([(":now".to_owned(), n(now.as_millis()))]);
        if let Some(tenant) = tenant {
            values.insert(":tenant".into(), tenant);
        }
        values
    }

    fn guard(&self, key: String, user: UserId) -> StoreResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.tables.users)
            .item("pk", s(key))
            .item("userId", s(user.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .build();
        Ok(TransactWriteItem::builder()
            .put(build("a guard", put)?)
            .build())
    }

    fn unguard(&self, key: String, user: UserId) -> StoreResult<TransactWriteItem> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.tables.users)
            .key("pk", s(key))
            .condition_expression("userId = :u")
            .expression_attribute_values(":u", s(user.to_string()))
            .build();
        Ok(TransactWriteItem::builder()
            .delete(build("a guard removal", delete)?)
            .build())
    }
}

#[async_trait]
impl TenantStore for DynamoStore {
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.config_get("TENANT", id.to_string()).await
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.config_all("TENANT").await
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        self.config_put(
            "TENANT",
            tenant.id.to_string(),
            to_json(tenant)?,
            Some("tenant.id"),
        )
        .await
    }

    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        self.config_put("TENANT", tenant.id.to_string(), to_json(tenant)?, None)
            .await
    }
}

#[async_trait]
impl ApplicationStore for DynamoStore {
    async fn application(&self, id: ApplicationId) -> StoreResult<Option<Application>> {
        self.config_get("APPLICATION", id.to_string()).await
    }

    async fn insert_application(&self, application: &Application) -> StoreResult<()> {
        self.config_put(
            "APPLICATION",
            application.id.to_string(),
            to_json(application)?,
            Some("application.id"),
        )
        .await
    }
}

#[async_trait]
impl TemplateStore for DynamoStore {
    async fn template(&self, id: TemplateId) -> StoreResult<Option<EmailTemplate>> {
        self.config_get("TEMPLATE", id.to_string()).await
    }

    async fn insert_template(&self, template: &EmailTemplate) -> StoreResult<()> {
        self.config_put(
            "TEMPLATE",
            template.id.to_string(),
            to_json(template)?,
            Some("emailTemplate.id"),
        )
        .await
    }
}

#[async_trait]
impl SigningKeyStore for DynamoStore {
    async fn signing_key(&self, id: KeyId) -> StoreResult<Option<SigningKey>> {
        self.config_get("KEY", id.to_string()).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.config_all("KEY").await
    }

    async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        self.config_put("KEY", key.id.to_string(), to_json(key)?, Some("key.id"))
            .await
    }
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    async fn api_key(&self, hash: &SecretHash) -> StoreResult<Option<ApiKey>> {
        self.config_get("APIKEY", hash.to_hex()).await
    }

    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.config_put(
            "APIKEY",
            key.key_hash.to_hex(),
            to_json(key)?,
            Some("apiKey.key"),
        )
        .await
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.user_item_by_id(id)
            .await?
            .as_ref()
            .map(Self::user_from_item)
            .transpose()
    }

    async fn user_by_email(&self, tenant: TenantId, email: &str) -> StoreResult<Option<User>> {
        self.user_by_index("byEmail", "emailKey", login_key(tenant, email))
            .await
    }

    async fn user_by_username(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> StoreResult<Option<User>> {
        self.user_by_index("byUsername", "usernameKey", login_key(tenant, username))
            .await
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let put = Put::builder()
            .table_name(&self.tables.users)
            .set_item(Some(Self::user_item(user, None)?))
            .condition_expression("attribute_not_exists(pk)")
            .build();
        let mut items = vec![TransactWriteItem::builder()
            .put(build("a user", put)?)
            .build()];
        let mut fields = vec!["user.id"];
        if let Some(email) = &user.email {
            items.push(self.guard(
                format!("EMAIL#{}", login_key(user.tenant_id, email)),
                user.id,
            )?);
            fields.push("user.email");
        }
        if let Some(username) = &user.username {
            items.push(self.guard(
                format!("USERNAME#{}", login_key(user.tenant_id, username)),
                user.id,
            )?);
            fields.push("user.username");
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match cancelled_items(&e) {
                Some(failed) => Err(StoreError::Duplicate(
                    failed
                        .iter()
                        .position(|f| *f)
                        .and_then(|i| fields.get(i).copied())
                        .unwrap_or("user.id"),
                )),
                None => Err(sdk("TransactWriteItems", e)),
            },
        }
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let Some(old_item) = self.user_item_by_id(user.id).await? else {
            return Err(StoreError::Missing);
        };
        let old = Self::user_from_item(&old_item)?;
        let current_code = get_s(&old_item, "currentCode").map(str::to_owned);
        // The write holds only if nobody started or finished a login in between.
        let mut put = Put::builder()
            .table_name(&self.tables.users)
            .set_item(Some(Self::user_item(user, current_code.as_deref())?));
        put = match &current_code {
            Some(code) => put
                .condition_expression("currentCode = :c")
                .expression_attribute_values(":c", s(code.clone())),
            None => put
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(currentCode)"),
        };
        let mut items = vec![TransactWriteItem::builder()
            .put(build("a user", put.build())?)
            .build()];
        let mut fields = vec!["user.id"];
        for (prefix, field, before, after) in [
            (
                "EMAIL#",
                "user.email",
                old.email.as_deref(),
                user.email.as_deref(),
            ),
            (
                "USERNAME#",
                "user.username",
                old.username.as_deref(),
                user.username.as_deref(),
            ),
        ] {
            let before = before.map(|v| format!("{prefix}{}", login_key(user.tenant_id, v)));
            let after = after.map(|v| format!("{prefix}{}", login_key(user.tenant_id, v)));
            if before != after {
                if let Some(key) = before {
                    items.push(self.unguard(key, user.id)?);
                    fields.push("user.id");
                }
                if let Some(key) = after {
                    items.push(self.guard(key, user.id)?);
                    fields.push(field);
                }
            }
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match cancelled_items(&e) {
                Some(failed) => match failed
                    .iter()
                    .position(|f| *f)
                    .and_then(|i| fields.get(i).copied())
                {
                    Some("user.id") | None => Err(StoreError::Unavailable(
                        "the user changed during the update; try again".into(),
                    )),
                    Some(field) => Err(StoreError::Duplicate(field)),
                },
                None => Err(sdk("TransactWriteItems", e)),
            },
        }
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
                self.consume_with_one_time_code(hash, given, tenant, now)
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

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn hit(&self, key: &str, window_seconds: i64, now: Instant) -> StoreResult<u32> {
        let (window_start, window_end) = now.window(window_seconds);
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.codes)
            .key("pk", s(format!("RATE#{key}#{}", window_start.as_millis())))
            .update_expression("ADD hits :one SET expiresAt = :expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(ttl_seconds(window_end)))
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

#[async_trait]
impl StoreAdmin for DynamoStore {
    async fn is_pristine(&self) -> StoreResult<bool> {
        let tenants: Vec<Tenant> = self.tenants().await?;
        if tenants.iter().any(|t| t.id != DEFAULT_TENANT_ID) {
            return Ok(false);
        }
        if self.kickstart_mark().await?.is_some() {
            return Ok(false);
        }
        for kind in ["APPLICATION", "APIKEY"] {
            let out = self
                .client
                .query()
                .table_name(&self.tables.config)
                .key_condition_expression("pk = :kind")
                .expression_attribute_values(":kind", s(kind))
                .limit(1)
                .send()
                .await
                .map_err(|e| sdk("Query", e))?;
            if out.count() > 0 {
                return Ok(false);
            }
        }
        let users = self
            .client
            .scan()
            .table_name(&self.tables.users)
            .limit(1)
            .send()
            .await
            .map_err(|e| sdk("Scan", e))?;
        Ok(users.count() == 0)
    }

    async fn kickstart_mark(&self) -> StoreResult<Option<KickstartMark>> {
        let value = self.config_body("META", "kickstart".into()).await?;
        value.as_deref().map(KickstartMark::from_stored).transpose()
    }

    async fn set_kickstart_mark(&self, mark: KickstartMark) -> StoreResult<()> {
        let only_new = (mark == KickstartMark::Started).then_some("kickstart");
        self.config_put(
            "META",
            "kickstart".into(),
            mark.as_str().to_owned(),
            only_new,
        )
        .await
    }
}

#[async_trait]
impl WrappedDataKeyStore for DynamoStore {
    async fn wrapped_data_key(&self) -> StoreResult<Option<Vec<u8>>> {
        self.config_body("META", "dataKey".into())
            .await?
            .map(|v| {
                STANDARD
                    .decode(v)
                    .map_err(|e| StoreError::Corrupt(format!("the wrapped data key: {e}")))
            })
            .transpose()
    }

    async fn insert_wrapped_data_key(&self, wrapped: &[u8]) -> StoreResult<()> {
        self.config_put(
            "META",
            "dataKey".into(),
            STANDARD.encode(wrapped),
            Some("dataKey"),
        )
        .await
    }
}
