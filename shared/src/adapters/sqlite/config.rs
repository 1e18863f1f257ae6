//! Configuration on the embedded store: tenants, applications, email templates, API keys (by
//! hash), signing keys, the system configuration, the kickstart mark and the wrapped data key.

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rusqlite::{params, OptionalExtension};

use crate::domain::ids::{ApplicationId, TemplateId, TenantId};
use crate::domain::system::SystemConfiguration;
use crate::domain::tenant::DEFAULT_TENANT_ID;
use crate::domain::{ApiKey, Application, EmailTemplate, KeyId, SecretHash, SigningKey, Tenant};
use crate::ports::*;

use super::{insert_error, to_json, unavailable, CachedStatements, SqliteStore};

#[async_trait]
impl TenantStore for SqliteStore {
    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        self.get_body("SELECT body FROM tenants WHERE id = ?1", id.to_string())
            .await
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.all_bodies("SELECT body FROM tenants ORDER BY id")
            .await
    }

    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        self.insert(
            "INSERT INTO tenants (id, body) VALUES (?1, ?2)",
            tenant.id.to_string(),
            to_json(tenant)?,
            "tenant.id",
        )
        .await
    }

    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let (id, body) = (tenant.id.to_string(), to_json(tenant)?);
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE tenants SET body = ?2 WHERE id = ?1",
                    params![id, body],
                )
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_tenant(&self, id: TenantId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            if tx
                .execute_cached("DELETE FROM tenants WHERE id = ?1", [&id])
                .map_err(unavailable)?
                == 0
            {
                return Err(StoreError::Missing);
            }
            for sql in [
                "DELETE FROM codes WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
                "DELETE FROM refresh_tokens WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
                "DELETE FROM two_factor_trusts WHERE user_id IN (SELECT id FROM users WHERE tenant_id = ?1)",
                "DELETE FROM two_factor_secrets WHERE tenant_id = ?1",
                "DELETE FROM users WHERE tenant_id = ?1",
                "DELETE FROM applications WHERE tenant_id = ?1",
                "DELETE FROM email_templates WHERE json_extract(body, '$.tenantId') = ?1",
                "DELETE FROM api_keys WHERE json_extract(body, '$.tenantId') = ?1",
                "DELETE FROM signing_keys WHERE json_extract(body, '$.tenantId') = ?1",
                "DELETE FROM grants WHERE json_extract(body, '$.tenantId') = ?1",
            ] {
                tx.execute_cached(sql, [&id]).map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl ApplicationStore for SqliteStore {
    async fn application(&self, id: ApplicationId) -> StoreResult<Option<Application>> {
        self.get_body(
            "SELECT body FROM applications WHERE id = ?1",
            id.to_string(),
        )
        .await
    }

    async fn insert_application(&self, application: &Application) -> StoreResult<()> {
        let (id, tenant, body) = (
            application.id.to_string(),
            application.tenant_id.to_string(),
            to_json(application)?,
        );
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO applications (id, tenant_id, body) VALUES (?1, ?2, ?3)",
                params![id, tenant, body],
            )
            .map(|_| ())
            .map_err(|e| insert_error(e, "application.id"))
        })
        .await
    }

    async fn applications(&self) -> StoreResult<Vec<Application>> {
        self.all_bodies("SELECT body FROM applications ORDER BY id")
            .await
    }

    async fn update_application(&self, application: &Application) -> StoreResult<()> {
        let (id, body) = (application.id.to_string(), to_json(application)?);
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE applications SET body = ?2 WHERE id = ?1",
                    params![id, body],
                )
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_application(&self, id: ApplicationId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            match conn
                .execute_cached("DELETE FROM applications WHERE id = ?1", [id])
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn template(&self, id: TemplateId) -> StoreResult<Option<EmailTemplate>> {
        self.get_body(
            "SELECT body FROM email_templates WHERE id = ?1",
            id.to_string(),
        )
        .await
    }

    async fn insert_template(&self, template: &EmailTemplate) -> StoreResult<()> {
        self.insert(
            "INSERT INTO email_templates (id, body) VALUES (?1, ?2)",
            template.id.to_string(),
            to_json(template)?,
            "emailTemplate.id",
        )
        .await
    }

    async fn templates(&self) -> StoreResult<Vec<EmailTemplate>> {
        self.all_bodies("SELECT body FROM email_templates ORDER BY id")
            .await
    }

    async fn update_template(&self, template: &EmailTemplate) -> StoreResult<()> {
        let (id, body) = (template.id.to_string(), to_json(template)?);
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE email_templates SET body = ?2 WHERE id = ?1",
                    params![id, body],
                )
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_template(&self, id: TemplateId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            match conn
                .execute_cached("DELETE FROM email_templates WHERE id = ?1", [id])
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn api_key(&self, hash: &SecretHash) -> StoreResult<Option<ApiKey>> {
        self.get_body("SELECT body FROM api_keys WHERE hash = ?1", hash.to_hex())
            .await
    }

    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.insert(
            "INSERT INTO api_keys (hash, body) VALUES (?1, ?2)",
            key.key_hash.to_hex(),
            to_json(key)?,
            "apiKey.key",
        )
        .await
    }

    async fn api_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.all_bodies("SELECT body FROM api_keys ORDER BY hash")
            .await
    }

    async fn update_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let (hash, body) = (key.key_hash.to_hex(), to_json(key)?);
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE api_keys SET body = ?2 WHERE hash = ?1",
                    params![hash, body],
                )
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn delete_api_key(&self, hash: &SecretHash) -> StoreResult<()> {
        let hash = hash.to_hex();
        self.run(move |conn| {
            match conn
                .execute_cached("DELETE FROM api_keys WHERE hash = ?1", [hash])
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn signing_key(&self, id: KeyId) -> StoreResult<Option<SigningKey>> {
        self.get_body(
            "SELECT body FROM signing_keys WHERE id = ?1",
            id.to_string(),
        )
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.all_bodies("SELECT body FROM signing_keys ORDER BY id")
            .await
    }

    async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        self.insert(
            "INSERT INTO signing_keys (id, body) VALUES (?1, ?2)",
            key.id.to_string(),
            to_json(key)?,
            "key.id",
        )
        .await
    }

    async fn delete_signing_key(&self, id: KeyId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            match conn
                .execute_cached("DELETE FROM signing_keys WHERE id = ?1", [id])
                .map_err(unavailable)?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl SystemStore for SqliteStore {
    async fn system_configuration(&self) -> StoreResult<Option<SystemConfiguration>> {
        self.get_body(
            "SELECT value FROM meta WHERE key = ?1",
            "systemConfiguration".to_owned(),
        )
        .await
    }

    async fn put_system_configuration(
        &self,
        configuration: &SystemConfiguration,
    ) -> StoreResult<()> {
        let body = to_json(configuration)?;
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO meta (key, value) VALUES ('systemConfiguration', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [body],
            )
            .map(|_| ())
            .map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl StoreAdmin for SqliteStore {
    async fn is_pristine(&self) -> StoreResult<bool> {
        let default = DEFAULT_TENANT_ID.to_string();
        self.run(move |conn| {
            let count: i64 = conn
                .query_row_cached(
                    "SELECT (SELECT COUNT(*) FROM tenants WHERE id != ?1) + (SELECT COUNT(*) FROM applications)
                          + (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM api_keys)
                          + (SELECT COUNT(*) FROM meta WHERE key = 'kickstart')",
                    [default],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            Ok(count == 0)
        })
        .await
    }

    async fn kickstart_mark(&self) -> StoreResult<Option<KickstartMark>> {
        self.run(|conn| {
            let value: Option<String> = conn
                .query_row_cached("SELECT value FROM meta WHERE key = 'kickstart'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(unavailable)?;
            value.as_deref().map(KickstartMark::from_stored).transpose()
        })
        .await
    }

    async fn set_kickstart_mark(&self, mark: KickstartMark) -> StoreResult<()> {
        let sql = match mark {
            KickstartMark::Started => "INSERT INTO meta (key, value) VALUES ('kickstart', ?1)",
            KickstartMark::Completed => "UPDATE meta SET value = ?1 WHERE key = 'kickstart'",
        };
        self.run(move |conn| {
            match conn
                .execute_cached(sql, [mark.as_str()])
                .map_err(|e| insert_error(e, "kickstart"))?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}

#[async_trait]
impl WrappedDataKeyStore for SqliteStore {
    async fn wrapped_data_key(&self) -> StoreResult<Option<Vec<u8>>> {
        self.run(|conn| {
            let value: Option<String> = conn
                .query_row_cached("SELECT value FROM meta WHERE key = 'dataKey'", [], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(unavailable)?;
            value
                .map(|v| {
                    STANDARD
                        .decode(v)
                        .map_err(|e| StoreError::Corrupt(format!("the wrapped data key: {e}")))
                })
                .transpose()
        })
        .await
    }

    async fn insert_wrapped_data_key(&self, wrapped: &[u8]) -> StoreResult<()> {
        let value = STANDARD.encode(wrapped);
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO meta (key, value) VALUES ('dataKey', ?1)",
                [value],
            )
            .map(|_| ())
            .map_err(|e| insert_error(e, "dataKey"))
        })
        .await
    }
}
