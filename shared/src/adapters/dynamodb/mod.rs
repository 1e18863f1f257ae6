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
//!   marking revoked families), `GRANT#hash` (authorization codes), `VERIFY#hash` (email and
//!   registration verifications), `TFSTEP#hash` (pending two-factor steps), `TFTRUST#hash`
//!   (trusted browsers) and `RATE#key#window`. A user's two-factor secrets are a
//!   `TWOFACTOR#id` item in `users`, saved by version.
//!   TTL deletion lags, so every read checks expiry itself.
//!
//! One module per aggregate: `schema` (creating the tables), `config` (with `cache`), `users`,
//! `codes`, `grants`, `refresh`, `verifications` and `rate`; this one holds the client, the
//! table names and the attribute helpers they share.

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
use crate::domain::system::SystemConfiguration;
use crate::domain::tenant::DEFAULT_TENANT_ID;
use crate::domain::user::normalize_login_id;
use crate::domain::{
    ApiKey, Application, EmailTemplate, Instant, KeyId, SecretHash, SigningKey, Tenant, User,
};
use crate::ports::*;

type Item = HashMap<String, AttributeValue>;

pub use crate::config::Tables;

/// How long a warm instance trusts a configuration read (tenants, applications, templates,
/// keys). Writes through this instance invalidate at once; other instances see changes after it.
const CONFIG_CACHE_TTL: Duration = Duration::from_secs(10);

/// At most this many configuration reads are remembered per instance (L4).
const CONFIG_CACHE_CAPACITY: usize = 1024;

mod cache;
mod codes;
mod config;
mod grants;
mod rate;
mod refresh;
mod schema;
mod two_factor;
mod users;
mod verifications;
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
}
