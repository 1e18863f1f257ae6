//! `/api/api-key`: make, read, change and delete API keys. The key is shown once, in the
//! response that made it; the store keeps its hash (S2).

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

use super::errors::ApiError;
use super::json::decode_body;
use super::management::required_object;
use super::wire::{ApiKeyMetaData, ApiKeyResponse, ApiKeyView};
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::ids::ApiKeyId;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{ApiKey, ApiKeyPermissions, Instant, Secret, TenantId};
use crate::flows::api_keys::{self as flows, ApiKeyDraft, Permissible, MIN_API_KEY_LEN};

/// FusionAuth's `APIKeyRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApiKeyBody {
    api_key: Option<ApiKeyInput>,
    source_key_id: Option<ApiKeyId>,
}

/// FusionAuth's `APIKey` as a request carries it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // id and the instants are the server's; they are read and dropped
struct ApiKeyInput {
    id: Option<ApiKeyId>,
    key: Option<String>,
    meta_data: Option<MetaData>,
    name: Option<String>,
    permissions: Option<ApiKeyPermissions>,
    tenant_id: Option<TenantId>,
    expiration_instant: Option<Instant>,
    key_manager: Option<bool>,
    ip_access_control_list_id: Option<uuid::Uuid>,
    retrievable: Option<bool>,
    insert_instant: Option<Value>,
    last_update_instant: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetaData {
    attributes: Option<BTreeMap<String, String>>,
}

/// The draft a request makes, or the properties this server cannot honour, by name.
fn draft(body: &[u8]) -> Result<ApiKeyDraft, ApiError> {
    let body: ApiKeyBody = decode_body(body)?;
    let mut errors = ValidationErrors::new();
    if body.source_key_id.is_some() {
        errors.push(not_supported(
            "sourceKeyId",
            "copying keys is not a feature of this server.",
        ));
    }
    let input = required_object("apiKey", body.api_key)?;
    if input.key_manager == Some(true) {
        errors.push(not_supported(
            "apiKey.keyManager",
            "only a key with no limits manages keys.",
        ));
    }
    if input.ip_access_control_list_id.is_some() {
        errors.push(not_supported(
            "apiKey.ipAccessControlListId",
            "IP access control lists are not built, and ignoring one would open the key to every address.",
        ));
    }
    if input.retrievable == Some(true) {
        errors.push(not_supported(
            "apiKey.retrievable",
            "keys are stored hashed and shown once, when made.",
        ));
    }
    errors.into_result().map_err(ApiError::BadRequest)?;
    let mut attributes = input
        .meta_data
        .unwrap_or_default()
        .attributes
        .unwrap_or_default();
    let description = attributes.remove("description").unwrap_or_default();
    Ok(ApiKeyDraft {
        key: input.key.map(Secret::new),
        description,
        attributes,
        name: input.name,
        permissions: input.permissions,
        tenant_id: input.tenant_id,
        expiration_instant: input.expiration_instant,
    })
}

fn not_supported(field: &str, why: &str) -> FieldError {
    FieldError::new(
        "notSupported",
        field,
        format!("[{field}] is not supported by this server: {why}"),
    )
}

/// A key as responses show it: FusionAuth's shape, never its hash; the key itself only when
/// it was just made.
fn view(key: &ApiKey, made: Option<&Secret>) -> ApiKeyView {
    let mut attributes = key.attributes.clone();
    if !key.description.is_empty() {
        attributes.insert("description".to_owned(), key.description.clone());
    }
    ApiKeyView {
        id: key.id,
        meta_data: ApiKeyMetaData { attributes },
        key_manager: false,
        retrievable: false,
        insert_instant: key.insert_instant,
        last_update_instant: key.last_update_instant,
        name: key.name.clone(),
        permissions: key.permissions.clone(),
        tenant_id: key.tenant_id,
        expiration_instant: key.expiration_instant,
        key: made.map(|secret| secret.expose().to_owned()),
    }
}

pub async fn create_api_key(
    app: &App,
    request: &HttpRequest,
    id: Option<ApiKeyId>,
    is_permissible: Permissible,
) -> Result<HttpResponse, ApiError> {
    let draft = draft(&request.body)?;
    let (key, secret) = flows::make_api_key(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        id,
        draft,
        is_permissible,
        MIN_API_KEY_LEN,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &ApiKeyResponse {
            api_key: &view(&key, Some(&secret)),
        },
    ))
}

pub(crate) async fn retrieve_api_key(app: &App, id: ApiKeyId) -> Result<HttpResponse, ApiError> {
    let key = flows::api_key(app.store.as_ref(), id).await?;
    Ok(json_response(
        StatusCode::OK,
        &ApiKeyResponse {
            api_key: &view(&key, None),
        },
    ))
}

/// `PUT`: the whole key but its value, which never changes.
pub async fn update_api_key(
    app: &App,
    request: &HttpRequest,
    id: ApiKeyId,
    is_permissible: Permissible,
) -> Result<HttpResponse, ApiError> {
    let draft = draft(&request.body)?;
    let key = flows::update_api_key(
        app.store.as_ref(),
        app.clock.as_ref(),
        id,
        draft,
        is_permissible,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &ApiKeyResponse {
            api_key: &view(&key, None),
        },
    ))
}

pub async fn delete_api_key(app: &App, id: ApiKeyId) -> Result<HttpResponse, ApiError> {
    flows::delete_api_key(app.store.as_ref(), id).await?;
    Ok(empty_response(StatusCode::OK))
}
