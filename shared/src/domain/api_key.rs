use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::ids::{ApiKeyId, TenantId};
use super::secret::SecretHash;
use super::time::Instant;
use super::validation::{FieldError, ValidationErrors};

/// An API key as stored: only the hash of the key itself (S2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub key_hash: SecretHash,
    /// FusionAuth's `metaData.attributes.description`.
    #[serde(default)]
    pub description: String,
    /// The other `metaData.attributes`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<ApiKeyPermissions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    /// After this instant the key opens nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_instant: Option<Instant>,
    #[serde(default)]
    pub insert_instant: Instant,
    #[serde(default)]
    pub last_update_instant: Instant,
}

/// What a limited key may call. Unknown fields are refused when the key is made (S28): a typo
/// such as `endpoint` must never read as "no limits".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyPermissions {
    pub endpoints: BTreeMap<String, Vec<String>>,
}

impl ApiKeyPermissions {
    /// Every endpoint and method must be one that `permissible` knows, and there must be at
    /// least one: an empty set is refused rather than read as "everything" (ours; FusionAuth
    /// reads it as no limits). A key meant to have no limits carries no `permissions` at all.
    pub fn validate(
        &self,
        field: &str,
        permissible: impl Fn(&str, &str) -> bool,
    ) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.endpoints.is_empty() {
            errors.push(FieldError::blank(&format!("{field}.endpoints")));
        }
        for (endpoint, methods) in &self.endpoints {
            let path = format!("{field}.endpoints[{endpoint}]");
            if methods.is_empty() {
                errors.push(FieldError::blank(&path));
            }
            for method in methods {
                if !permissible(endpoint, method) {
                    errors.push(FieldError::invalid(
                        &path,
                        format!(
                            "[{method} {endpoint}] is not an endpoint an API key can be permitted."
                        ),
                    ));
                }
            }
        }
        errors.into_result()
    }
}

impl ApiKey {
    /// Whether the key may manage API keys: only a key with no limits of any kind, since a
    /// key that makes keys could make itself a wider one.
    pub(crate) fn is_unrestricted(&self) -> bool {
        self.permissions.is_none() && self.tenant_id.is_none()
    }

    pub(crate) fn has_expired(&self, now: Instant) -> bool {
        self.expiration_instant.is_some_and(|at| at <= now)
    }

    /// A key with no permissions may call every API, as in FusionAuth; one with permissions
    /// may call only the listed endpoint and method pairs (S21), and an empty list permits
    /// nothing (S28).
    pub(crate) fn permits(&self, endpoint: &str, method: &str) -> bool {
        match &self.permissions {
            None => true,
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
            attributes: BTreeMap::new(),
            name: None,
            permissions,
            tenant_id: None,
            expiration_instant: None,
            insert_instant: Instant::from_secs(0),
            last_update_instant: Instant::from_secs(0),
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

    #[test]
    fn s28_an_empty_permission_list_permits_nothing() {
        let k = key(Some(ApiKeyPermissions::default()));
        assert!(!k.permits("/api/passwordless/start", "POST"));
    }

    #[test]
    fn m5_unknown_permission_fields_endpoints_and_methods_are_refused() {
        let typo: Result<ApiKeyPermissions, _> = serde_json::from_value(
            serde_json::json!({"endpoint": {"/api/passwordless/start": ["POST"]}}),
        );
        assert!(typo.is_err());
        let known = |e: &str, m: &str| e == "/api/passwordless/start" && m == "POST";
        let mut endpoints = BTreeMap::new();
        endpoints.insert(
            "/api/passwordless/strat".to_owned(),
            vec!["POST".to_owned()],
        );
        endpoints.insert("/api/passwordless/start".to_owned(), vec!["PUT".to_owned()]);
        let errors = ApiKeyPermissions { endpoints }
            .validate("apiKey.permissions", known)
            .unwrap_err();
        assert_eq!(errors.field_errors.len(), 2);
        assert!(ApiKeyPermissions::default()
            .validate("apiKey.permissions", known)
            .unwrap_err()
            .has_code("[blank]apiKey.permissions.endpoints"));
    }
}
