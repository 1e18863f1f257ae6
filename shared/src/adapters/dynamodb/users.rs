//! The users table: `USER#id` items with the login state as top-level attributes, and the
//! `EMAIL#`/`USERNAME#` guard items that make uniqueness per tenant a transaction.

use super::*;

impl DynamoStore {
    /// A user item: the profile as JSON plus the attributes a login updates in place.
    pub(super) fn user_item(user: &User, current_code: Option<&str>) -> StoreResult<Item> {
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
    pub(super) fn user_from_item(item: &Item) -> StoreResult<User> {
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

    pub(super) async fn user_item_by_id(&self, id: UserId) -> StoreResult<Option<Item>> {
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

    pub(super) async fn user_by_index(
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

    /// Deletes a user item with its email and username guards, in one transaction.
    pub(super) async fn delete_user_items(&self, user: &User) -> StoreResult<()> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.tables.users)
            .key("pk", user_key(user.id))
            .build();
        // The user's two-factor secrets go with it (deleting an absent item is no error).
        let secrets = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.tables.users)
            .key("pk", super::two_factor::secrets_key(user.id))
            .build();
        let mut items = vec![
            TransactWriteItem::builder()
                .delete(build("a user removal", delete)?)
                .build(),
            TransactWriteItem::builder()
                .delete(build("a two-factor removal", secrets)?)
                .build(),
        ];
        if let Some(email) = &user.email {
            items.push(self.unguard(
                format!("EMAIL#{}", login_key(user.tenant_id, email)),
                user.id,
            )?);
        }
        if let Some(username) = &user.username {
            items.push(self.unguard(
                format!("USERNAME#{}", login_key(user.tenant_id, username)),
                user.id,
            )?);
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| sdk("TransactWriteItems", e))?;
        Ok(())
    }

    /// Deletes every user of a tenant. Tenant deletion is rare, and the tenant is unusable
    /// before it starts.
    pub(super) async fn delete_users_of_tenant(&self, tenant: TenantId) -> StoreResult<()> {
        for item in self.user_items_of_tenant(tenant).await? {
            self.delete_user_items(&Self::user_from_item(&item)?)
                .await?;
        }
        Ok(())
    }

    /// Every user item of a tenant: a scan, since users are keyed by id alone.
    pub(super) async fn user_items_of_tenant(&self, tenant: TenantId) -> StoreResult<Vec<Item>> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.tables.users)
                .filter_expression("tenantId = :t AND begins_with(pk, :user)")
                .expression_attribute_values(":t", s(tenant.to_string()))
                .expression_attribute_values(":user", s(USER))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk("Scan", e))?;
            found.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => return Ok(found),
            }
        }
    }

    pub(super) fn guard(&self, key: String, user: UserId) -> StoreResult<TransactWriteItem> {
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

    pub(super) fn unguard(&self, key: String, user: UserId) -> StoreResult<TransactWriteItem> {
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
impl UserStore for DynamoStore {
    /// The user's codes and refresh tokens stay until their TTL: every use of them loads the
    /// user first and finds nobody.
    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        let Some(item) = self.user_item_by_id(id).await? else {
            return Err(StoreError::Missing);
        };
        self.delete_user_items(&Self::user_from_item(&item)?).await
    }

    async fn users_of_tenant(&self, tenant: TenantId) -> StoreResult<Vec<User>> {
        self.user_items_of_tenant(tenant)
            .await?
            .iter()
            .map(Self::user_from_item)
            .collect()
    }

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
