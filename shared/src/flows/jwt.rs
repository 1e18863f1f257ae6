//! FusionAuth's `/api/jwt` helpers: validating an access token and publishing public keys.

use serde_json::Value;

use crate::domain::{ApplicationId, KeyId, SigningKey};
use crate::ports::{ApplicationStore, Clock, KeyVault, SigningKeyStore, TenantStore};

use super::{FlowError, FlowResult};

/// The claims of a live access token of ours, or `None` (forged, foreign, expired).
pub async fn validate<S: TenantStore + SigningKeyStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    clock: &dyn Clock,
    token: &str,
) -> FlowResult<Option<Value>> {
    Ok(super::oidc::live_token(store, vault, clock, token)
        .await?
        .map(|(claims, _)| claims))
}

/// Which public keys a caller asks for.
pub enum KeySelection {
    /// The key of this id.
    Kid(KeyId),
    /// The key the application's access tokens are signed with.
    Application(ApplicationId),
    /// Every published key.
    All,
}

/// Public keys as `(id, PEM)`; HMAC keys have none and are never listed. A single key asked for
/// that does not exist (or has no public half) is `NotFound`.
pub async fn public_keys<S: TenantStore + ApplicationStore + SigningKeyStore + ?Sized>(
    store: &S,
    selection: KeySelection,
) -> FlowResult<Vec<(KeyId, String)>> {
    let pem = |key: &SigningKey| key.public_jwk.as_ref().and_then(|jwk| jwk.to_pem());
    let one = |key: Option<SigningKey>| -> FlowResult<Vec<(KeyId, String)>> {
        let key = key.ok_or(FlowError::NotFound)?;
        let pem = pem(&key).ok_or(FlowError::NotFound)?;
        Ok(vec![(key.id, pem)])
    };
    match selection {
        KeySelection::Kid(id) => one(store.signing_key(id).await?),
        KeySelection::Application(id) => {
            let application = store.application(id).await?.ok_or(FlowError::NotFound)?;
            let tenant = store
                .tenant(application.tenant_id)
                .await?
                .ok_or(FlowError::NotFound)?;
            let key_id = application
                .jwt_configuration
                .access_token_key_id
                .or(tenant.jwt_configuration.access_token_key_id)
                .ok_or(FlowError::NotFound)?;
            one(store.signing_key(key_id).await?)
        }
        KeySelection::All => Ok(store
            .signing_keys()
            .await?
            .iter()
            .filter_map(|key| pem(key).map(|p| (key.id, p)))
            .collect()),
    }
}
