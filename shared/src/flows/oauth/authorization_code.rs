//! The `authorization_code` grant (RFC 6749 section 4.1.3, RFC 7636 section 4.5): the code a
//! completed hosted sign-in left, redeemed once, bound to its client, redirect URI and PKCE
//! challenge.

use tracing::{info, warn};

use crate::domain::oauth::{verifier_matches, AuthorizationGrant};
use crate::domain::{Application, ApplicationId, Instant, Secret, SecretHash};
use crate::ports::{Clock, Entropy, KeyVault, Redeemed};

use super::token::{
    check_client_secret, ClientCredentials, CodeGrant, OAuthError, TokenError, TokenStore, Tokens,
};
use crate::flows::tenancy::tenant_of;
use crate::flows::tokens::{issue_access_token, issue_id_token, issue_refresh_token, IdTokenFacts};

/// Redeems an authorization code for tokens. The code is redeemed before the checks, so a
/// code presented with a wrong client, redirect URI or verifier is spent as well (S18).
pub(super) async fn redeem<S: TokenStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    grant: CodeGrant,
    client: ClientCredentials,
) -> Result<Tokens, TokenError> {
    let CodeGrant {
        code,
        redirect_uri,
        code_verifier,
    } = grant;
    let ClientCredentials {
        id: client_id,
        secret: client_secret,
    } = client;
    let application = known_client(store, client_id.as_deref()).await?;
    let now = clock.now();
    let grant = take_grant(store, &code, now).await?;
    let presented = (code_verifier.as_deref(), client_secret.as_ref());
    check_redemption(&application, &grant, &redirect_uri, presented)?;
    let tenant = tenant_of(store, grant.tenant_id).await?;
    let Some(user) = store.user(grant.user_id).await?.filter(|u| u.active) else {
        return Err(
            OAuthError::invalid_grant("user_locked", "The user can no longer sign in.").into(),
        );
    };
    let registered = user.registration(application.id).is_some();
    let refresh = match registered
        && application.login_configuration.generate_refresh_tokens
        && grant.request.has_scope("offline_access")
    {
        true => Some(
            issue_refresh_token(
                store,
                entropy,
                &tenant,
                &application,
                &user,
                now,
                Some(family_of_grant(&code.hash())),
                // A client that proved itself here proves itself at every refresh (S35).
                client_secret.is_some(),
            )
            .await?,
        ),
        false => None,
    };
    // The session (`sid`) is the refresh-token family: stable across rotations, what logout ends.
    let session = refresh.as_ref().map(|_| family_of_grant(&code.hash()));
    let access = issue_access_token(
        store,
        vault,
        entropy,
        &tenant,
        &application,
        &user,
        now,
        session,
    )
    .await?;
    let id_token = match grant.request.has_scope("openid") {
        true => Some(
            issue_id_token(
                store,
                vault,
                &tenant,
                &application,
                &user,
                now,
                IdTokenFacts {
                    nonce: grant.request.nonce.as_deref(),
                    auth_time: grant.auth_time,
                    access_token: &access.token,
                    expiration: access.expiration,
                    session,
                },
            )
            .await?,
        ),
        false => None,
    };
    info!(user_id = %user.id, tenant_id = %tenant.id, application_id = %application.id, "authorization code exchanged");
    Ok(Tokens {
        expires_in: (access.expiration.as_secs() - now.as_secs()).max(0),
        access_token: access.token,
        id_token,
        refresh_token_id: refresh.as_ref().map(|r| r.id),
        refresh_token_expires_at: refresh.as_ref().map(|r| r.expires_at),
        refresh_token: refresh.map(|r| r.token),
        scope: grant.request.scope.clone(),
        user_id: user.id,
    })
}

/// The active application a client id names; anything else is an unknown client.
async fn known_client<S: TokenStore + ?Sized>(
    store: &S,
    client_id: Option<&str>,
) -> Result<Application, TokenError> {
    let unknown = || OAuthError::invalid_client("invalid_client_id", "The client is unknown.");
    let client_id = client_id
        .and_then(ApplicationId::parse)
        .ok_or_else(unknown)?;
    Ok(store
        .application(client_id)
        .await?
        .filter(|a| a.active)
        .ok_or_else(unknown)?)
}

/// Redeems the code, once. A replayed code revokes whatever its first redemption produced
/// (S18); either way the answer is the same invalid grant as for a code nobody made.
async fn take_grant<S: TokenStore + ?Sized>(
    store: &S,
    code: &Secret,
    now: Instant,
) -> Result<AuthorizationGrant, TokenError> {
    let invalid =
        || OAuthError::invalid_grant("auth_code_not_found", "The authorization code is invalid.");
    match store.redeem_grant(&code.hash(), now).await? {
        Redeemed::Fresh(grant) => Ok(grant),
        Redeemed::Replayed(grant) => {
            store
                .revoke_refresh_family(family_of_grant(&code.hash()))
                .await?;
            warn!(user_id = %grant.user_id, application_id = %grant.request.client_id, "authorization code replayed: its tokens are revoked");
            Err(invalid().into())
        }
        Redeemed::Nothing => Err(invalid().into()),
    }
}

/// The refresh-token family an authorization code starts: derived from the code's hash, so a
/// replay of the code names the family to revoke without any record of it (S18).
pub(super) fn family_of_grant(code_hash: &SecretHash) -> crate::domain::ids::RefreshTokenId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("refresh-family:{}", code_hash.to_hex()).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    crate::domain::ids::RefreshTokenId::from_random_bytes(bytes)
}

/// The bindings of a grant (S18, S19): the same client and redirect URI, the verifier of its
/// challenge (and none without one, against PKCE downgrade), and the client's secret where its
/// policy asks for one.
fn check_redemption(
    application: &Application,
    grant: &AuthorizationGrant,
    redirect_uri: &str,
    (code_verifier, client_secret): (Option<&str>, Option<&Secret>),
) -> Result<(), OAuthError> {
    if grant.request.client_id != application.id {
        return Err(OAuthError::invalid_grant(
            "invalid_client_id",
            "The authorization code was issued to another client.",
        ));
    }
    if grant.request.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "invalid_redirect_uri",
            "The redirect_uri differs from the authorization request's.",
        ));
    }
    match (&grant.request.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) if verifier_matches(verifier, challenge) => {}
        (Some(_), _) => {
            return Err(OAuthError::invalid_grant(
                "invalid_pkce_code_verifier",
                "The code_verifier does not match the code_challenge.",
            ))
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "invalid_pkce_code_verifier",
                "A code_verifier was sent for a code issued without a code_challenge.",
            ))
        }
        (None, None) => {}
    }
    let used_pkce = grant.request.code_challenge.is_some();
    check_client_secret(application, client_secret, used_pkce)
}
