//! The `refresh_token` grant (RFC 6749 section 6) and the rotation it shares with FusionAuth's
//! `/api/jwt/refresh`.

use tracing::{info, warn};

use crate::domain::{Application, Secret};
use crate::ports::{Clock, Entropy, KeyVault, Rotation};

use super::token::{
    authenticate_client, ClientCredentials, OAuthError, TokenError, TokenStore, Tokens,
};
use crate::flows::tenancy::tenant_of;
use crate::flows::tokens::{issue_access_token, new_refresh_token};
use crate::flows::FlowResult;

/// The `refresh_token` grant: the client authenticates as it did for the code (a public
/// client, one that may skip authentication when it uses PKCE, refreshes without a secret),
/// then the token rotates ([`rotate_refresh`]).
pub(super) async fn redeem<S: TokenStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    presented: &Secret,
    client: ClientCredentials,
) -> Result<Tokens, TokenError> {
    let application =
        authenticate_client(store, client.id.as_deref(), client.secret.as_ref()).await?;
    let redeemer = Redeemer::Client {
        application: &application,
        authenticated: client.secret.is_some(),
    };
    let tokens = rotate_refresh(store, vault, clock, entropy, presented, redeemer).await?;
    tokens.ok_or_else(|| {
        OAuthError::invalid_grant("invalid_refresh_token", "The refresh token is invalid.").into()
    })
}

/// Who presents a refresh token.
#[derive(Clone, Copy)]
pub(crate) enum Redeemer<'a> {
    /// FusionAuth's `/api/jwt/refresh`: no client, so no client-bound token (S35).
    Api,
    /// The token endpoint's client, `authenticated` when it proved itself with its secret.
    Client {
        application: &'a Application,
        authenticated: bool,
    },
}

/// Rotates a refresh token (the old one is used up, a successor of the same family answers)
/// and signs a new access token: the core of the OAuth grant and of FusionAuth's
/// `/api/jwt/refresh`. At the token endpoint the token must be that client's, and a
/// client-bound one needs the client authenticated; at the API, its own application must be
/// active and the token not client-bound (S35). `None` for a token that is unknown, expired,
/// revoked, refused to this redeemer or of an inactive user; a rotated token presented again
/// also revokes its whole family (S20). The successor keeps the family's start and never
/// outlives the token it replaces, so a family ends with the refresh lifetime of its first
/// sign-in (FusionAuth's fixed expiration, S35).
pub(crate) async fn rotate_refresh<S: TokenStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    presented: &Secret,
    redeemer: Redeemer<'_>,
) -> FlowResult<Option<Tokens>> {
    let now = clock.now();
    let Some(old) = store.refresh_token(&presented.hash(), now).await? else {
        return Ok(None);
    };
    let application = match redeemer {
        Redeemer::Client {
            application,
            authenticated,
        } if application.id == old.application_id && (authenticated || !old.client_bound) => {
            application.clone()
        }
        Redeemer::Client { .. } => return Ok(None),
        Redeemer::Api if old.client_bound => {
            warn!(application_id = %old.application_id, "refresh refused: the token is its client's, redeemed at the token endpoint");
            return Ok(None);
        }
        Redeemer::Api => match store
            .application(old.application_id)
            .await?
            .filter(|a| a.active)
        {
            Some(application) => application,
            None => return Ok(None),
        },
    };
    let tenant = tenant_of(store, old.tenant_id).await?;
    let user = store.user(old.user_id).await?.filter(|u| u.active);
    let rotation = match (&user, old.rotated) {
        (Some(user), false) => {
            let family = Some(old.family_id());
            let (token, mut successor) =
                new_refresh_token(entropy, &tenant, &application, user, now, family)?;
            successor.start_instant = old.start_instant;
            successor.expires_at = successor.expires_at.min(old.expires_at);
            successor.client_bound = old.client_bound;
            match store
                .rotate_refresh_token(&presented.hash(), &successor, now)
                .await?
            {
                Rotation::Rotated(_) => Some((token, successor)),
                Rotation::Reused(_) => None,
                Rotation::Nothing => return Ok(None),
            }
        }
        (None, false) => return Ok(None),
        (_, true) => None,
    };
    let (Some(user), Some((token, successor))) = (user, rotation) else {
        // A used token again: whoever holds the family's tokens may be a thief (S20).
        store.revoke_refresh_family(old.family_id()).await?;
        warn!(user_id = %old.user_id, application_id = %application.id, "refresh token reused: its family is revoked");
        return Ok(None);
    };
    let access = issue_access_token(
        store,
        vault,
        entropy,
        &tenant,
        &application,
        &user,
        now,
        Some(old.family_id()),
    )
    .await?;
    info!(user_id = %user.id, tenant_id = %tenant.id, application_id = %application.id, "refresh token rotated");
    Ok(Some(Tokens {
        expires_in: (access.expiration.as_secs() - now.as_secs()).max(0),
        access_token: access.token,
        id_token: None,
        refresh_token: Some(token),
        refresh_token_id: Some(successor.id),
        refresh_token_expires_at: Some(successor.expires_at),
        scope: None,
        user_id: user.id,
    }))
}
