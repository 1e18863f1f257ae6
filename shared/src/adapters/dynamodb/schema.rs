//! The tables' shape: created when missing, on-demand billing, TTL on the codes table.

use super::*;

impl DynamoStore {
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
            .attribute_definitions(attr(super::refresh::USER_INDEX_KEY)?)
            .key_schema(key("pk", KeyType::Hash)?)
            .global_secondary_indexes(index(
                super::refresh::USER_INDEX,
                super::refresh::USER_INDEX_KEY,
            )?)
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
}
