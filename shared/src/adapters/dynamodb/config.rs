//! The config table: tenants, applications, email templates, signing keys, API keys and the
//! store's own marks (kickstart, the wrapped data key), one partition per kind, read through
//! the warm instance's cache.

use super::*;

impl DynamoStore {
    pub(super) fn cached(&self, kind: &'static str, id: &str) -> Option<Option<String>> {
        self.cache.get(kind, id, std::time::Instant::now())
    }

    pub(super) fn remember(&self, kind: &'static str, id: &str, value: Option<String>) {
        self.cache.put(kind, id, value, std::time::Instant::now());
    }

    pub(super) fn forget(&self, kind: &'static str, id: &str) {
        self.cache.forget(kind, id);
    }

    /// A config item's body, through the per-instance cache.
    pub(super) async fn config_body(
        &self,
        kind: &'static str,
        id: String,
    ) -> StoreResult<Option<String>> {
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

    pub(super) async fn config_get<T: DeserializeOwned>(
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

    pub(super) async fn config_all<T: DeserializeOwned>(
        &self,
        kind: &'static str,
    ) -> StoreResult<Vec<T>> {
        self.config_items(kind).await?.iter().map(body).collect()
    }

    /// Every item of one kind, as stored.
    pub(super) async fn config_items(&self, kind: &'static str) -> StoreResult<Vec<Item>> {
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
            found.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(found),
            }
        }
    }

    /// Deletes one config item; `Missing` when there was none.
    pub(super) async fn config_delete(&self, kind: &'static str, id: String) -> StoreResult<()> {
        self.forget(kind, &id);
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.tables.config)
            .key("pk", s(kind))
            .key("sk", s(id.clone()))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        self.forget(kind, &id);
        match deleted {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Missing)
            }
            Err(e) => Err(sdk("DeleteItem", e)),
        }
    }

    /// Deletes every config item of `kind` whose body names `tenant` as its owner.
    async fn delete_config_of_tenant(
        &self,
        kind: &'static str,
        tenant: TenantId,
    ) -> StoreResult<()> {
        let owner = tenant.to_string();
        for item in self.config_items(kind).await? {
            let body: serde_json::Value = body(&item)?;
            if body.get("tenantId").and_then(serde_json::Value::as_str) != Some(owner.as_str()) {
                continue;
            }
            if let Some(id) = get_s(&item, "sk") {
                match self.config_delete(kind, id.to_owned()).await {
                    Ok(()) | Err(StoreError::Missing) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    pub(super) async fn config_put(
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

    /// The tenant item goes first, in one request: from then on nothing of the tenant resolves
    /// (on other warm instances once their cache entry ages out, CONFIG_CACHE_TTL). What belongs
    /// to it is then deleted item by item; a run cut short leaves only unreachable items, and
    /// codes, grants and refresh tokens of its users, which no longer find their user, are left
    /// to the TTL sweeper.
    async fn delete_tenant(&self, id: TenantId) -> StoreResult<()> {
        self.config_delete("TENANT", id.to_string()).await?;
        for kind in ["APPLICATION", "TEMPLATE", "KEY", "APIKEY"] {
            self.delete_config_of_tenant(kind, id).await?;
        }
        self.delete_users_of_tenant(id).await
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

    async fn applications(&self) -> StoreResult<Vec<Application>> {
        self.config_all("APPLICATION").await
    }

    async fn update_application(&self, application: &Application) -> StoreResult<()> {
        self.config_put(
            "APPLICATION",
            application.id.to_string(),
            to_json(application)?,
            None,
        )
        .await
    }

    async fn delete_application(&self, id: ApplicationId) -> StoreResult<()> {
        self.config_delete("APPLICATION", id.to_string()).await
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

    async fn templates(&self) -> StoreResult<Vec<EmailTemplate>> {
        self.config_all("TEMPLATE").await
    }

    async fn update_template(&self, template: &EmailTemplate) -> StoreResult<()> {
        self.config_put(
            "TEMPLATE",
            template.id.to_string(),
            to_json(template)?,
            None,
        )
        .await
    }

    async fn delete_template(&self, id: TemplateId) -> StoreResult<()> {
        self.config_delete("TEMPLATE", id.to_string()).await
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

    async fn delete_signing_key(&self, id: KeyId) -> StoreResult<()> {
        self.config_delete("KEY", id.to_string()).await
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

    async fn api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.config_all("APIKEY").await
    }

    async fn update_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.config_put("APIKEY", key.key_hash.to_hex(), to_json(key)?, None)
            .await
    }

    async fn delete_api_key(&self, hash: &SecretHash) -> StoreResult<()> {
        self.config_delete("APIKEY", hash.to_hex()).await
    }
}

#[async_trait]
impl SystemStore for DynamoStore {
    async fn system_configuration(&self) -> StoreResult<Option<SystemConfiguration>> {
        self.config_get("META", "systemConfiguration".into()).await
    }

    async fn put_system_configuration(
        &self,
        configuration: &SystemConfiguration,
    ) -> StoreResult<()> {
        let id = "systemConfiguration";
        self.forget("META", id);
        self.client
            .put_item()
            .table_name(&self.tables.config)
            .item("pk", s("META"))
            .item("sk", s(id))
            .item("body", s(to_json(configuration)?))
            .send()
            .await
            .map_err(|e| sdk("PutItem", e))?;
        Ok(())
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
