//! API keys: made (the key shown once, stored hashed, S2), listed, changed and deleted. Only a
//! key with no limits reaches these flows (the route table's `UnrestrictedKey`).

use std::collections::BTreeMap;

use crate::domain::ids::ApiKeyId;
use crate::domain::validation::{FieldError, ValidationErrors};
use crate::domain::{ApiKey, ApiKeyPermissions, Instant, Secret, TenantId};
use crate::ports::{ApiKeyStore, Clock, Entropy, StoreError, TenantStore};

use super::{duplicate, random_id_bytes, FlowError, FlowResult};

/// Whether API-key permissions may name an endpoint and method: the route table knows.
pub(crate) type Permissible = fn(&str, &str) -> bool;

/// A key asked for through the API shorter than this is refused: it could be guessed (S30 says
/// the same of kickstart files).
pub(crate) const MIN_API_KEY_LEN: usize = 32;

/// Generated keys: 32 random bytes, 43 characters of base64url.
const GENERATED_KEY: crate::domain::CodeGenerator = crate::domain::CodeGenerator {
    length: 32,
    kind: crate::domain::GeneratorType::RandomBytes,
};

/// What a caller may say about a key.
#[derive(Debug, Clone, Default)]
pub struct ApiKeyDraft {
    /// The key itself; generated when absent. Only on create.
    pub key: Option<Secret>,
    pub description: String,
    pub attributes: BTreeMap<String, String>,
    pub name: Option<String>,
    pub permissions: Option<ApiKeyPermissions>,
    pub tenant_id: Option<TenantId>,
    pub expiration_instant: Option<Instant>,
}

/// Stores a new API key (hashed, S2) with optional endpoint permissions and tenant lock.
/// Permissions fail closed (S28): every endpoint and method must be `permissible`.
#[allow(clippy::too_many_arguments)]
pub async fn create_api_key<S>(
    store: &S,
    entropy: &dyn Entropy,
    clock: &dyn Clock,
    key: &Secret,
    description: &str,
    permissions: Option<ApiKeyPermissions>,
    tenant: Option<TenantId>,
    permissible: Permissible,
) -> FlowResult<ApiKey>
where
    S: ApiKeyStore + TenantStore + ?Sized,
{
    let draft = ApiKeyDraft {
        key: Some(key.clone()),
        description: description.to_owned(),
        permissions,
        tenant_id: tenant,
        ..ApiKeyDraft::default()
    };
    let (made, _) = make_api_key(store, clock, entropy, None, draft, permissible, 1).await?;
    Ok(made)
}

/// Makes a key from a draft: the key named (at least `min_len` long) or a generated one, which
/// the caller shows once. Nothing else ever sees the key again.
pub(crate) async fn make_api_key<S>(
    store: &S,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    id: Option<ApiKeyId>,
    draft: ApiKeyDraft,
    permissible: Permissible,
    min_len: usize,
) -> FlowResult<(ApiKey, Secret)>
where
    S: ApiKeyStore + TenantStore + ?Sized,
{
    let mut errors = check_draft(store, &draft, permissible).await?;
    let key = match draft.key.clone() {
        Some(key) => {
            if key.expose().trim().is_empty() {
                errors.push(FieldError::blank("apiKey.key"));
            } else if key.expose().len() > crate::domain::secret::MAX_SECRET_LEN {
                errors.push(FieldError::new(
                    "tooLong",
                    "apiKey.key",
                    "The key is too long.",
                ));
            } else if key.expose().len() < min_len {
                errors.push(FieldError::new(
                    "tooShort",
                    "apiKey.key",
                    format!(
                        "A key is at least {min_len} characters: a shorter one could be guessed."
                    ),
                ));
            }
            key
        }
        None => GENERATED_KEY.generate(entropy)?,
    };
    errors.into_result()?;
    let id = match id {
        Some(id) => id,
        None => ApiKeyId::from_random_bytes(random_id_bytes(entropy)?),
    };
    if store.api_keys().await?.iter().any(|k| k.id == id) {
        return Err(duplicate("apiKeyId", "An API key with this id"));
    }
    let now = clock.now();
    let api_key = ApiKey {
        id,
        key_hash: key.hash(),
        description: draft.description,
        attributes: draft.attributes,
        name: draft.name,
        permissions: draft.permissions,
        tenant_id: draft.tenant_id,
        expiration_instant: draft.expiration_instant,
        insert_instant: now,
        last_update_instant: now,
    };
    match store.insert_api_key(&api_key).await {
        Err(StoreError::Duplicate(_)) => Err(duplicate("apiKey.key", "This API key")),
        other => Ok(other.map(|()| (api_key, key))?),
    }
}

/// The rules every draft meets: permissions that name served endpoints (S28), a tenant that
/// exists, a name without line breaks.
async fn check_draft<S: TenantStore + ?Sized>(
    store: &S,
    draft: &ApiKeyDraft,
    permissible: Permissible,
) -> FlowResult<ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if let Some(permissions) = &draft.permissions {
        if let Err(more) = permissions.validate("apiKey.permissions", permissible) {
            errors.extend(more);
        }
    }
    if let Some(tenant) = draft.tenant_id {
        if store.tenant(tenant).await?.is_none() {
            errors.push(FieldError::invalid(
                "apiKey.tenantId",
                "The tenant does not exist.",
            ));
        }
    }
    errors.require_single_line("apiKey.name", draft.name.as_deref());
    errors.require_single_line(
        "apiKey.metaData.attributes.description",
        Some(&draft.description),
    );
    Ok(errors)
}

pub async fn api_key<S: ApiKeyStore + ?Sized>(store: &S, id: ApiKeyId) -> FlowResult<ApiKey> {
    store
        .api_keys()
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(FlowError::NotFound)
}

pub async fn api_keys<S: ApiKeyStore + ?Sized>(store: &S) -> FlowResult<Vec<ApiKey>> {
    Ok(store.api_keys().await?)
}

/// Changes what a key may do and says about itself; the key itself never changes (a draft that
/// names a different one is refused).
pub async fn update_api_key<S>(
    store: &S,
    clock: &dyn Clock,
    id: ApiKeyId,
    draft: ApiKeyDraft,
    permissible: Permissible,
) -> FlowResult<ApiKey>
where
    S: ApiKeyStore + TenantStore + ?Sized,
{
    let current = api_key(store, id).await?;
    let mut errors = check_draft(store, &draft, permissible).await?;
    if draft
        .key
        .as_ref()
        .is_some_and(|key| !current.key_hash.matches(&key.hash()))
    {
        errors.push(FieldError::invalid(
            "apiKey.key",
            "A key's value cannot be changed: make a new key.",
        ));
    }
    errors.into_result()?;
    let updated = ApiKey {
        description: draft.description,
        attributes: draft.attributes,
        name: draft.name,
        permissions: draft.permissions,
        tenant_id: draft.tenant_id,
        expiration_instant: draft.expiration_instant,
        last_update_instant: clock.now(),
        ..current
    };
    match store.update_api_key(&updated).await {
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        other => Ok(other.map(|()| updated)?),
    }
}

pub async fn delete_api_key<S: ApiKeyStore + ?Sized>(store: &S, id: ApiKeyId) -> FlowResult<()> {
    let current = api_key(store, id).await?;
    match store.delete_api_key(&current.key_hash).await {
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        other => Ok(other?),
    }
}
