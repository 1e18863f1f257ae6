//! Signing keys through the management API: generated, imported, read, listed and deleted. A tenant's
//! caller makes and sees its tenant's keys (and sees the global ones); private halves never
//! leave the vault (S24, S26).

use crate::domain::signing::{GeneratedKey, KeyMaterial};
use crate::domain::validation::{FieldError, ValidationErrors};
use serde_json::Value;

use crate::domain::{Instant, KeyId, SigningAlgorithm, SigningKey, TenantId};
use crate::ports::{
    ApplicationStore, Clock, Entropy, KeyMaker, KeyVault, SigningKeyStore, StoreError, TenantStore,
};

use super::tenancy::TenantScope;
use super::{random_id_bytes, FlowError, FlowResult};

/// The ports making a key uses.
pub(crate) struct KeyMaking<'a> {
    pub key_maker: &'a dyn KeyMaker,
    pub vault: &'a dyn KeyVault,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
}

/// What a caller asks of a new key.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyDraft {
    pub algorithm: SigningAlgorithm,
    pub name: Option<String>,
    /// RSA only: 2048, 3072 or 4096 bits.
    pub length: Option<u32>,
}

/// Generates a key, sealed by the vault before it is stored (S26). It belongs to the caller's
/// tenant, or to none for an unrestricted caller.
pub(crate) async fn generate_key<S: SigningKeyStore + ?Sized>(
    store: &S,
    making: &KeyMaking<'_>,
    scope: &TenantScope,
    id: Option<KeyId>,
    draft: KeyDraft,
) -> FlowResult<SigningKey> {
    let mut errors = ValidationErrors::new();
    match (draft.algorithm, draft.length) {
        (SigningAlgorithm::Rs256, None | Some(2048 | 3072 | 4096))
        | (_, None)
        | (SigningAlgorithm::Hs256, Some(256))
        | (SigningAlgorithm::Hs512, Some(512)) => {}
        (SigningAlgorithm::Rs256, Some(_)) => errors.push(FieldError::invalid(
            "key.length",
            "An RSA key is 2048, 3072 or 4096 bits.",
        )),
        (_, Some(_)) => errors.push(FieldError::invalid(
            "key.length",
            "Only RSA keys take a length.",
        )),
    }
    errors.require_single_line("key.name", draft.name.as_deref());
    errors.into_result()?;
    let id = fresh_key_id(store, making.entropy, id).await?;
    let made = making
        .key_maker
        .generate(id, draft.algorithm, draft.length)?;
    store_key(store, making, scope, made, draft.name).await
}

/// Seals a made key's private half (S26) into its stored form; a public key imported alone
/// has none to seal.
pub async fn seal(
    vault: &dyn KeyVault,
    made: &GeneratedKey,
    tenant: Option<TenantId>,
    now: Instant,
) -> FlowResult<SigningKey> {
    let sealed = match &made.private {
        Some(private) => {
            vault
                .seal(&private.0, &SigningKey::seal_context(made.id))
                .await?
        }
        None => String::new(),
    };
    Ok(made.sealed(sealed, tenant, now))
}

async fn store_key<S: SigningKeyStore + ?Sized>(
    store: &S,
    making: &KeyMaking<'_>,
    scope: &TenantScope,
    made: GeneratedKey,
    name: Option<String>,
) -> FlowResult<SigningKey> {
    let mut key = seal(making.vault, &made, scope.explicit, making.clock.now()).await?;
    key.name = name;
    match store.insert_signing_key(&key).await {
        Err(StoreError::Duplicate(_)) => Err(duplicate_key()),
        other => Ok(other.map(|()| key)?),
    }
}

/// The id a new key gets: the one asked for, unless a key has it, else a random one.
async fn fresh_key_id<S: SigningKeyStore + ?Sized>(
    store: &S,
    entropy: &dyn Entropy,
    id: Option<KeyId>,
) -> FlowResult<KeyId> {
    let id = match id {
        Some(id) => id,
        None => KeyId::from_random_bytes(random_id_bytes(entropy)?),
    };
    if store.signing_key(id).await?.is_some() {
        return Err(duplicate_key());
    }
    Ok(id)
}

fn duplicate_key() -> FlowError {
    ValidationErrors::field(FieldError::new(
        "duplicate",
        "keyId",
        "A key with this id already exists.",
    ))
    .into()
}

/// What a caller brings to an import.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyImport {
    pub algorithm: Option<SigningAlgorithm>,
    pub name: Option<String>,
    pub private_key: Option<String>,
    pub public_key: Option<String>,
    pub secret: Option<String>,
}

/// Imports a key: a PEM private key (its public half given or not), a PEM public key alone
/// (kept, never signing or published), or an HMAC secret. Checked, then sealed and stored as
/// a generated key is.
pub(crate) async fn import_key<S: SigningKeyStore + ?Sized>(
    store: &S,
    making: &KeyMaking<'_>,
    scope: &TenantScope,
    id: Option<KeyId>,
    import: KeyImport,
) -> FlowResult<SigningKey> {
    let mut errors = ValidationErrors::new();
    errors.require_single_line("key.name", import.name.as_deref());
    let material = match (&import.secret, &import.private_key, &import.public_key) {
        (Some(secret), None, None) => import.algorithm.map(|algorithm| KeyMaterial::Secret {
            algorithm,
            secret: secret.as_bytes(),
        }),
        (None, private_key, public_key) => Some(KeyMaterial::Pem {
            algorithm: import.algorithm,
            private_key: private_key.as_deref(),
            public_key: public_key.as_deref(),
        }),
        (Some(_), _, _) => {
            errors.push(FieldError::invalid(
                "key.secret",
                "A secret is imported alone, without a private or public key.",
            ));
            None
        }
    };
    if import.secret.is_some() && import.algorithm.is_none() {
        errors.push(FieldError::missing("key.algorithm"));
    }
    errors.into_result()?;
    let id = fresh_key_id(store, making.entropy, id).await?;
    let material = material.ok_or_else(|| FlowError::Internal("no key material".into()))?;
    let made = making
        .key_maker
        .import(id, material)
        .map_err(|e| ValidationErrors::field(FieldError::invalid(e.field, e.message)))?;
    store_key(store, making, scope, made, import.name).await
}

pub async fn key<S: SigningKeyStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    id: KeyId,
) -> FlowResult<SigningKey> {
    match store.signing_key(id).await? {
        Some(key) if scope.sees(key.tenant_id) => Ok(key),
        _ => Err(FlowError::NotFound),
    }
}

pub async fn keys<S: SigningKeyStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
) -> FlowResult<Vec<SigningKey>> {
    let mut keys = store.signing_keys().await?;
    keys.retain(|k| scope.sees(k.tenant_id));
    Ok(keys)
}

/// Deletes a key no tenant or application signs with. Rotation goes the other way round: point
/// the tenant at a new key first; the old one stays published while it is kept (S24).
pub(crate) async fn delete_key<S>(store: &S, scope: &TenantScope, id: KeyId) -> FlowResult<()>
where
    S: SigningKeyStore + TenantStore + ApplicationStore + ?Sized,
{
    let current = key(store, scope, id).await?;
    if !scope.changes(current.tenant_id) {
        return Err(FlowError::Unauthorized);
    }
    let names =
        |access: Option<KeyId>, id_token: Option<KeyId>| access == Some(id) || id_token == Some(id);
    let by_tenant = store.tenants().await?.iter().any(|t| {
        names(
            t.jwt_configuration.access_token_key_id,
            t.jwt_configuration.id_token_key_id,
        )
    });
    let by_application = store.applications().await?.iter().any(|a| {
        names(
            a.jwt_configuration.access_token_key_id,
            a.jwt_configuration.id_token_key_id,
        )
    });
    if by_tenant || by_application {
        return Err(ValidationErrors::field(FieldError::new(
            "inUse",
            "keyId",
            "A tenant or an application signs with this key.",
        ))
        .into());
    }
    match store.delete_signing_key(id).await {
        Err(StoreError::Missing) => Err(FlowError::NotFound),
        other => Ok(other?),
    }
}

/// All public signing keys, for the JWKS.
pub(crate) async fn public_keys<S: SigningKeyStore + ?Sized>(store: &S) -> FlowResult<Vec<Value>> {
    Ok(store
        .signing_keys()
        .await?
        .iter()
        .filter_map(SigningKey::jwk)
        .collect())
}

/// One tenant's public keys: those it owns and the global keys it signs with (S22), so a
/// verifier of this tenant's tokens trusts no other tenant's key.
pub(crate) async fn tenant_public_keys<S: TenantStore + SigningKeyStore + ?Sized>(
    store: &S,
    tenant: TenantId,
) -> FlowResult<Vec<Value>> {
    let tenant = store.tenant(tenant).await?.ok_or(FlowError::NotFound)?;
    let configured = [
        tenant.jwt_configuration.access_token_key_id,
        tenant.jwt_configuration.id_token_key_id,
    ];
    Ok(store
        .signing_keys()
        .await?
        .iter()
        .filter(|key| match key.tenant_id {
            Some(owner) => owner == tenant.id,
            None => configured.contains(&Some(key.id)),
        })
        .filter_map(SigningKey::jwk)
        .collect())
}
