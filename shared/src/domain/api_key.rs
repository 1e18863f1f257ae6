use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::ids::{ApiKeyId, TenantId};
use super::secret::SecretHash;

/// An API key as stored: only the hash of the key itself (S2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub key_hash: SecretHash,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<ApiKeyPermissions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApiKeyPermissions {
    pub endpoints: BTreeMap<String, Vec<String>>,
}

impl ApiKey {
    /// A key with no endpoint permissions may call every API, as in FusionAuth; one with
    /// permissions may call only the listed endpoint and method pairs (S21).
    pub fn permits(&self, endpoint: &str, method: &str) -> bool {
        match &self.permissions {
            None => true,
            Some(p) if p.endpoints.is_empty() => true,
            Some(p) => p
                .endpoints
                .get(endpoint)
                .is_some_and(|methods| methods.iter().any(|m| m.eq_ignore_ascii_case(method))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(permissions: Option<ApiKeyPermissions>) -> ApiKey {
        ApiKey {
            id: ApiKeyId::from_random_bytes([1; 16]),
            key_hash: SecretHash::of("k"),
            description: String::new(),
            permissions,
            tenant_id: None,
        }
    }

    #[test]
    fn s21_a_key_without_permissions_may_call_everything() {
        assert!(key(None).permits("/api/user", "GET"));
    }

    #[test]
    fn s21_a_limited_key_may_call_only_its_endpoints_and_methods() {
        let mut endpoints = BTreeMap::new();
        endpoints.insert(
            "/api/passwordless/start".to_owned(),
            vec!["POST".to_owned()],
        );
        let k = key(Some(ApiKeyPermissions { endpoints }));
        assert!(k.permits("/api/passwordless/start", "POST"));
        assert!(!k.permits("/api/passwordless/start", "GET"));
        assert!(!k.permits("/api/user", "GET"));
    }
}
