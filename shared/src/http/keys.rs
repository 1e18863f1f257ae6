//! `/api/key`: generate, retrieve, list and delete signing keys. Responses carry the public
//! half only (`publicKey` as PEM), never a private key or an HMAC secret (S24).

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::ApiError;
use super::json::decode_body;
use super::management::{path_id, required_object};
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::signing::PublicJwk;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{KeyId, SigningAlgorithm, SigningKey};
use crate::flows::keys::{self as flows, KeyDraft};
use crate::flows::tenancy::TenantScope;

/// FusionAuth's `KeyRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyBody {
    key: Option<KeyInput>,
}

/// FusionAuth's `Key` as a generate request carries it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // the server's own properties are read and dropped
struct KeyInput {
    algorithm: Option<String>,
    name: Option<String>,
    length: Option<u32>,
    issuer: Option<String>,
    id: Option<KeyId>,
    kid: Option<String>,
    r#type: Option<String>,
    has_private_key: Option<bool>,
    insert_instant: Option<Value>,
    last_update_instant: Option<Value>,
    expiration_instant: Option<Value>,
    certificate: Option<String>,
    certificate_information: Option<Value>,
    private_key: Option<String>,
    public_key: Option<String>,
    secret: Option<String>,
}

fn algorithm(name: Option<&str>) -> Result<SigningAlgorithm, FieldError> {
    match name {
        None | Some("RS256") => Ok(SigningAlgorithm::Rs256),
        Some("ES256") => Ok(SigningAlgorithm::Es256),
        Some("HS256") => Ok(SigningAlgorithm::Hs256),
        Some(other @ ("RS384" | "RS512" | "ES384" | "ES512" | "HS384" | "HS512")) => {
            Err(FieldError::new(
                "notSupported",
                "key.algorithm",
                format!(
                    "[{other}] is not supported by this server: keys are RS256, ES256 or HS256."
                ),
            ))
        }
        Some(_) => Err(FieldError::invalid(
            "key.algorithm",
            "The algorithm must be RS256, ES256 or HS256.",
        )),
    }
}

/// A key as responses show it: FusionAuth's shape, the public half only.
fn view(key: &SigningKey) -> Value {
    let kind = match key.algorithm {
        SigningAlgorithm::Rs256 => "RSA",
        SigningAlgorithm::Es256 => "EC",
        SigningAlgorithm::Hs256 => "HMAC",
    };
    let mut view = json!({
        "id": key.id,
        "kid": key.id,
        "algorithm": key.algorithm.name(),
        "type": kind,
        "hasPrivateKey": key.algorithm != SigningAlgorithm::Hs256,
        "insertInstant": key.insert_instant,
        "lastUpdateInstant": key.insert_instant,
    });
    if let Some(name) = &key.name {
        view["name"] = json!(name);
    }
    if let Some(length) = key.length {
        view["length"] = json!(length);
    }
    if let Some(pem) = key.public_jwk.as_ref().and_then(PublicJwk::to_pem) {
        view["publicKey"] = json!(pem);
    }
    view
}

/// `POST /api/key/generate[/{id}]`.
pub async fn generate_key(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let id = id.map(|t| path_id(t, "keyId", KeyId::parse)).transpose()?;
    let body: KeyBody = decode_body(&request.body)?;
    let input = required_object("key", body.key)?;
    let mut errors = ValidationErrors::new();
    for (field, given) in [
        ("key.privateKey", input.private_key.is_some()),
        ("key.publicKey", input.public_key.is_some()),
        ("key.secret", input.secret.is_some()),
        ("key.certificate", input.certificate.is_some()),
    ] {
        if given {
            errors.push(FieldError::invalid(
                field,
                format!("[{field}] belongs in an import (/api/key/import), not a generate."),
            ));
        }
    }
    let algorithm = algorithm(input.algorithm.as_deref()).map_err(|e| {
        errors.push(e);
    });
    errors.into_result().map_err(ApiError::BadRequest)?;
    let draft = KeyDraft {
        algorithm: algorithm.unwrap_or_default(),
        name: input.name,
        length: input.length,
    };
    let key = flows::generate_key(
        app.store.as_ref(),
        app.key_maker.as_ref(),
        app.key_vault.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        scope,
        id,
        draft,
    )
    .await?;
    Ok(json_response(StatusCode::OK, &json!({"key": view(&key)})))
}

pub async fn retrieve_key(
    app: &App,
    scope: &TenantScope,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let id = KeyId::parse(id).ok_or(ApiError::NotFound)?;
    let key = flows::key(app.store.as_ref(), scope, id).await?;
    Ok(json_response(StatusCode::OK, &json!({"key": view(&key)})))
}

pub async fn list_keys(app: &App, scope: &TenantScope) -> Result<HttpResponse, ApiError> {
    let keys = flows::keys(app.store.as_ref(), scope).await?;
    let views: Vec<Value> = keys.iter().map(view).collect();
    Ok(json_response(StatusCode::OK, &json!({"keys": views})))
}

pub async fn delete_key(
    app: &App,
    scope: &TenantScope,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    let id = KeyId::parse(id).ok_or(ApiError::NotFound)?;
    flows::delete_key(app.store.as_ref(), scope, id).await?;
    Ok(empty_response(StatusCode::OK))
}
