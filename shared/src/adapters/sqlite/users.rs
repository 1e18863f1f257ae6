//! Users on the embedded store, unique per tenant by lowercased email and username.

use async_trait::async_trait;
use rusqlite::params;

use crate::domain::ids::{TenantId, UserId};
use crate::domain::User;
use crate::ports::*;

use super::{from_json, insert_error, to_json, unavailable, CachedStatements, SqliteStore};

#[async_trait]
impl UserStore for SqliteStore {
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.get_body("SELECT body FROM users WHERE id = ?1", id.to_string())
            .await
    }

    async fn user_by_email(&self, tenant: TenantId, email: &str) -> StoreResult<Option<User>> {
        self.user_by_login(
            "SELECT body FROM users WHERE tenant_id = ?1 AND email = ?2",
            tenant,
            email,
        )
        .await
    }

    async fn user_by_username(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> StoreResult<Option<User>> {
        self.user_by_login(
            "SELECT body FROM users WHERE tenant_id = ?1 AND username = ?2",
            tenant,
            username,
        )
        .await
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let row = (
            user.id.to_string(),
            user.tenant_id.to_string(),
            user.normalized_email(),
            user.normalized_username(),
            to_json(user)?,
        );
        self.run(move |conn| {
            conn.execute_cached(
                "INSERT INTO users (id, tenant_id, email, username, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.0, row.1, row.2, row.3, row.4],
            )
            .map(|_| ())
            .map_err(|e| insert_error(e, "user.id"))
        })
        .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        let id = id.to_string();
        self.run(move |conn| {
            let tx = conn.transaction().map_err(unavailable)?;
            if tx
                .execute_cached("DELETE FROM users WHERE id = ?1", [&id])
                .map_err(unavailable)?
                == 0
            {
                return Err(StoreError::Missing);
            }
            tx.execute_cached("DELETE FROM codes WHERE user_id = ?1", [&id])
                .map_err(unavailable)?;
            for sql in [
                "DELETE FROM refresh_tokens WHERE user_id = ?1",
                "DELETE FROM two_factor_secrets WHERE user_id = ?1",
                "DELETE FROM two_factor_trusts WHERE user_id = ?1",
            ] {
                tx.execute_cached(sql, [&id]).map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn users_of_tenant(&self, tenant: TenantId) -> StoreResult<Vec<User>> {
        let tenant = tenant.to_string();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare("SELECT body FROM users WHERE tenant_id = ?1")
                .map_err(unavailable)?;
            let bodies = stmt
                .query_map([tenant], |row| row.get::<_, String>(0))
                .map_err(unavailable)?;
            bodies
                .map(|b| b.map_err(unavailable).and_then(|b| from_json(&b)))
                .collect()
        })
        .await
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let row = (
            user.id.to_string(),
            user.normalized_email(),
            user.normalized_username(),
            to_json(user)?,
        );
        self.run(move |conn| {
            match conn
                .execute_cached(
                    "UPDATE users SET email = ?2, username = ?3, body = ?4 WHERE id = ?1",
                    params![row.0, row.1, row.2, row.3],
                )
                .map_err(|e| insert_error(e, "user.id"))?
            {
                0 => Err(StoreError::Missing),
                _ => Ok(()),
            }
        })
        .await
    }
}
