//! FusionAuth's `/api/jwt` helpers: validating an access token, publishing public keys, and
//! listing and revoking refresh tokens.

use serde_json::Value;

use std::collections::BTreeSet;

use crate::domain::ids::RefreshTokenId;
use crate::domain::signing::PublicJwk;
use crate::domain::{ApplicationId, Instant, KeyId, Secret, SigningKey, UserId};
use crate::ports::{
    ApplicationStore, Clock, KeyVault, RefreshTokenFilter, RefreshTokenStore, SigningKeyStore,
    StoredRefreshToken, TenantStore, UserStore,
};

use super::tenancy::TenantScope;
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
pub(crate) enum KeySelection {
    /// The key of this id.
    Kid(KeyId),
    /// The key the application's access tokens are signed with.
    Application(ApplicationId),
    /// Every published key.
    All,
}

/// Public keys as `(id, PEM)`; HMAC keys have none and are never listed. A single key asked for
/// that does not exist (or has no public half) is `NotFound`.
pub(crate) async fn public_keys<S: TenantStore + ApplicationStore + SigningKeyStore + ?Sized>(
    store: &S,
    selection: KeySelection,
) -> FlowResult<Vec<(KeyId, String)>> {
    let pem = |key: &SigningKey| key.published_jwk().and_then(PublicJwk::to_pem);
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

/// What a revoke names: tokens by user, application or id, a user's for one application,
/// or the token itself.
pub(crate) enum RevokeTarget {
    Filter(RefreshTokenFilter),
    UserForApplication(UserId, ApplicationId),
    Token(Secret),
}

/// The live refresh tokens `filter` selects, within the caller's tenant (S22). An unknown
/// (or foreign) user, application or token id is `NotFound`.
pub async fn refresh_tokens<S: UserStore + ApplicationStore + RefreshTokenStore + ?Sized>(
    store: &S,
    scope: &TenantScope,
    filter: RefreshTokenFilter,
    now: Instant,
) -> FlowResult<Vec<StoredRefreshToken>> {
    match filter {
        RefreshTokenFilter::User(id) => {
            store
                .user(id)
                .await?
                .filter(|u| scope.allows(u.tenant_id))
                .ok_or(FlowError::NotFound)?;
        }
        RefreshTokenFilter::Application(id) => {
            store
                .application(id)
                .await?
                .filter(|a| scope.allows(a.tenant_id))
                .ok_or(FlowError::NotFound)?;
        }
        RefreshTokenFilter::Id(_) => {}
    }
    let tokens: Vec<StoredRefreshToken> = store
        .live_refresh_tokens(filter, now)
        .await?
        .into_iter()
        .filter(|t| scope.allows(t.tenant_id))
        .collect();
    if matches!(filter, RefreshTokenFilter::Id(_)) && tokens.is_empty() {
        return Err(FlowError::NotFound);
    }
    Ok(tokens)
}

/// Ends the sessions a revoke names: each token's whole family, so the tokens it was rotated
/// from and into die with it (S20). An unknown token is `NotFound`.
pub(crate) async fn revoke_refresh_tokens<
    S: UserStore + ApplicationStore + RefreshTokenStore + ?Sized,
>(
    store: &S,
    scope: &TenantScope,
    target: RevokeTarget,
    now: Instant,
) -> FlowResult<usize> {
    let tokens = match target {
        RevokeTarget::Filter(filter) => refresh_tokens(store, scope, filter, now).await?,
        RevokeTarget::UserForApplication(user, application) => {
            refresh_tokens(store, scope, RefreshTokenFilter::User(user), now)
                .await?
                .into_iter()
                .filter(|t| t.application_id == application)
                .collect()
        }
        RevokeTarget::Token(token) => {
            let found = store
                .refresh_token(&token.hash(), now)
                .await?
                .filter(|t| scope.allows(t.tenant_id))
                .ok_or(FlowError::NotFound)?;
            vec![found]
        }
    };
    let families: BTreeSet<RefreshTokenId> = tokens.iter().map(|t| t.family_id()).collect();
    for family in &families {
        store.revoke_refresh_family(*family).await?;
    }
    Ok(families.len())
}

/// Ends a session from its refresh token (FusionAuth's logout): the token's rotation family, or
/// with `global` every refresh token of its user. An unknown, expired or revoked token ends
/// nothing, and is no error: logging out twice is logging out.
pub(crate) async fn logout<S: UserStore + ApplicationStore + RefreshTokenStore + ?Sized>(
    store: &S,
    token: &Secret,
    global: bool,
    now: Instant,
) -> FlowResult<()> {
    let Some(found) = store.refresh_token(&token.hash(), now).await? else {
        return Ok(());
    };
    if !global {
        // The token was just read: its family is known without reading it again.
        store.revoke_refresh_family(found.family_id()).await?;
        return Ok(());
    }
    let target = RevokeTarget::Filter(RefreshTokenFilter::User(found.user_id));
    match revoke_refresh_tokens(store, &TenantScope::default(), target, now).await {
        Ok(_) | Err(FlowError::NotFound) => Ok(()),
        Err(other) => Err(other),
    }
}
