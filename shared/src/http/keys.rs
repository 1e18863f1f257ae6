//! `/api/key`: generate, import, retrieve, list and delete signing keys. Responses carry the public
//! half only (`publicKey` as PEM), never a private key or an HMAC secret (S24).

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::errors::ApiError;
use super::json::{decode_body, Checks};
use super::management::required_object;
use super::wire::{KeyResponse, KeyView, KeysResponse};
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::signing::PublicJwk;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{KeyId, SigningAlgorithm, SigningKey};
use crate::flows::keys::{self as flows, KeyDraft, KeyImport};
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

fn algorithm(name: &str) -> Result<SigningAlgorithm, FieldError> {
    if let Some(algorithm) = SigningAlgorithm::from_name(name) {
        return Ok(algorithm);
    }
    match name {
        "RS384" | "RS512" | "ES512" | "HS384" => Err(FieldError::new(
            "notSupported",
            "key.algorithm",
            format!(
                "[{name}] is not supported by this server: keys are RS256, ES256, ES384, HS256 \
                 or HS512."
            ),
        )),
        _ => Err(FieldError::invalid(
            "key.algorithm",
            "The algorithm must be RS256, ES256, ES384, HS256 or HS512.",
        )),
    }
}

/// A key as responses show it: FusionAuth's shape, the public half only.
fn view(key: &SigningKey) -> KeyView {
    KeyView {
        id: key.id,
        kid: key.id,
        algorithm: key.algorithm.name(),
        key_type: key.algorithm.key_type(),
        has_private_key: key.can_sign() && !key.algorithm.is_hmac(),
        insert_instant: key.insert_instant,
        last_update_instant: key.insert_instant,
        name: key.name.clone(),
        length: key.length,
        public_key: key.public_jwk.as_ref().and_then(PublicJwk::to_pem),
    }
}

/// `POST /api/key/import[/{id}]`: a PEM private key (with its `publicKey` or not), a PEM public
/// key alone, or an HMAC `secret` with its `algorithm`.
pub(crate) async fn import_key(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<KeyId>,
) -> Result<HttpResponse, ApiError> {
    let body: KeyBody = decode_body(&request.body)?;
    let input = required_object("key", body.key)?;
    let mut checks = Checks::new();
    let private_key = checks.optional_text("key.privateKey", input.private_key, MAX_PEM_BYTES);
    let public_key = checks.optional_text("key.publicKey", input.public_key, MAX_PEM_BYTES);
    let secret = checks.optional_text("key.secret", input.secret, MAX_PEM_BYTES);
    let mut errors = ValidationErrors::new();
    if input.certificate.is_some() {
        errors.push(FieldError::new(
            "notSupported",
            "key.certificate",
            "Certificates are not imported: import the public key as PEM.",
        ));
    }
    let algorithm = input
        .algorithm
        .as_deref()
        .map(algorithm)
        .transpose()
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        });
    checks.finish()?;
    errors.into_result().map_err(ApiError::BadRequest)?;
    let import = KeyImport {
        algorithm,
        name: input.name,
        private_key,
        public_key,
        secret,
    };
    let key = flows::import_key(app.store.as_ref(), &app.key_making(), scope, id, import).await?;
    Ok(json_response(
        StatusCode::OK,
        &KeyResponse { key: &view(&key) },
    ))
}

/// The largest PEM (or secret) an import takes: a 4096-bit RSA private key is about 3.3 KiB.
const MAX_PEM_BYTES: usize = 16 * 1024;

/// `POST /api/key/generate[/{id}]`.
pub(crate) async fn generate_key(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<KeyId>,
) -> Result<HttpResponse, ApiError> {
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
    let algorithm = algorithm(input.algorithm.as_deref().unwrap_or("RS256")).map_err(|e| {
        errors.push(e);
    });
    errors.into_result().map_err(ApiError::BadRequest)?;
    let draft = KeyDraft {
        algorithm: algorithm.unwrap_or_default(),
        name: input.name,
        length: input.length,
    };
    let key = flows::generate_key(app.store.as_ref(), &app.key_making(), scope, id, draft).await?;
    Ok(json_response(
        StatusCode::OK,
        &KeyResponse { key: &view(&key) },
    ))
}

pub(crate) async fn retrieve_key(
    app: &App,
    scope: &TenantScope,
    id: KeyId,
) -> Result<HttpResponse, ApiError> {
    let key = flows::key(app.store.as_ref(), scope, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &KeyResponse { key: &view(&key) },
    ))
}

pub(crate) async fn list_keys(app: &App, scope: &TenantScope) -> Result<HttpResponse, ApiError> {
    let keys = flows::keys(app.store.as_ref(), scope).await?;
    let views: Vec<KeyView> = keys.iter().map(view).collect();
    Ok(json_response(
        StatusCode::OK,
        &KeysResponse { keys: &views },
    ))
}

pub(crate) async fn delete_key(
    app: &App,
    scope: &TenantScope,
    id: KeyId,
) -> Result<HttpResponse, ApiError> {
    flows::delete_key(app.store.as_ref(), scope, id).await?;
    Ok(empty_response(StatusCode::OK))
}
