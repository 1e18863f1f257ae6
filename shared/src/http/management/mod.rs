//! The management routes kickstart and the client libraries need, one file per aggregate
//! (tenants, applications with their roles, registrations, email templates; users are
//! `users.rs`, keys `keys.rs`, API keys `api_keys.rs`). This file holds what their handlers
//! share: the object a body must carry, merge-patching, and the flags of their queries.

mod applications;
mod email_templates;
mod registrations;
mod tenants;

pub use applications::{create_application, delete_application, update_application};
pub(crate) use applications::{delete_role, list_applications, retrieve_application, write_role};
pub(crate) use email_templates::{
    create_email_template, delete_email_template, list_email_templates, preview_email_template,
    retrieve_email_template, update_email_template,
};
pub use registrations::register;
pub(crate) use registrations::{delete_registration, retrieve_registration, update_registration};
pub(crate) use tenants::{create_tenant, list_tenants, patch_tenant, retrieve_tenant};
pub use tenants::{delete_tenant, update_tenant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::json::{decode_body, decode_value};
use crate::domain::validation::FieldError;

/// The object a request body carries under `name`: `[missing]name` without it.
pub(crate) fn required_object<T>(name: &str, object: Option<T>) -> Result<T, ApiError> {
    object.ok_or_else(|| ApiError::field(FieldError::missing(name)))
}

/// A source object FusionAuth copies from, which this product does not do: refused by name
/// rather than ignored, since the result would not be what the caller asked for.
pub(crate) fn refuse_copy<T>(field: &str, source: Option<T>) -> Result<(), ApiError> {
    match source {
        Some(_) => Err(ApiError::field(FieldError::invalid(
            field,
            format!("[{field}] is not supported: copying objects is not a feature of this server."),
        ))),
        None => Ok(()),
    }
}

/// The object a PATCH body carries under `name`, checked against the object's type before it is
/// merged: a wrong type or an unknown property is `[invalidJSON]` as on a create.
pub(crate) fn patch_object(body: &[u8], name: &str) -> Result<Map<String, Value>, ApiError> {
    let mut body: Map<String, Value> = decode_body(body)?;
    match body.remove(name) {
        Some(Value::Object(object)) => Ok(object),
        Some(Value::Null) | None => Err(ApiError::field(FieldError::missing(name))),
        Some(_) => Err(super::json::invalid_json(Some(name), "not an object")),
    }
}

/// `current` with `patch` merged in (RFC 7396: objects merge, other values replace, null
/// removes), decoded again so every property of the result is checked.
pub(crate) fn patched<T: Serialize + DeserializeOwned>(
    current: &T,
    patch: Map<String, Value>,
    name: &str,
) -> Result<T, ApiError> {
    let mut merged = serde_json::to_value(current)
        .map_err(|e| ApiError::Internal(super::errors::Internal::caused_by(e)))?;
    merge(&mut merged, Value::Object(patch));
    decode_value(merged, Some(name)).map_err(ApiError::BadRequest)
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

/// `?inactive=true` on a list: the deactivated objects instead of the active ones.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub inactive: bool,
}

/// `?reactivate=true` on an update.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UpdateQuery {
    #[serde(default)]
    pub reactivate: bool,
}

/// `?hardDelete=true` on a delete: gone, not deactivated.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeleteQuery {
    #[serde(default)]
    pub hard_delete: bool,
}
