//! The token endpoint (RFC 6749 section 3.2): the request, its grants, its errors and the
//! client authentication they share. Each grant is in its own file.

use tracing::instrument;

use crate::domain::{Application, ApplicationId, Secret};
use crate::ports::{
    ApplicationStore, Clock, Entropy, GrantStore, KeyVault, RefreshTokenStore, SigningKeyStore,
    StoreError, TenantStore, UserStore,
};

use super::{authorization_code, refresh_token};
use crate::flows::FlowError;

/// A token request as RFC 6749 section 4.1.3 and RFC 7636 section 4.5 define it, with the
/// client's credentials from HTTP Basic or the form.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub grant: Grant,
    pub client: ClientCredentials,
}

/// The client's credentials as presented (HTTP Basic or the form); checked by the grant.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub id: Option<String>,
    pub secret: Option<Secret>,
}

/// The grant a token request asks for, with what that grant needs (read at the edge, which
/// answers a missing or unknown `grant_type`, or a missing part, before anything is looked up).
#[derive(Debug, Clone)]
pub enum Grant {
    AuthorizationCode(CodeGrant),
    RefreshToken(Secret),
}

/// What the `authorization_code` grant presents besides the client.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub code: Secret,
    pub redirect_uri: String,
    pub code_verifier: Option<String>,
}

/// Why a token request ends without tokens: a protocol error the client is told (RFC 6749
/// section 5.2), or a failure of ours.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{}", .0.description)]
    Protocol(OAuthError),
    #[error(transparent)]
    Flow(#[from] FlowError),
}

impl From<OAuthError> for TokenError {
    fn from(error: OAuthError) -> Self {
        TokenError::Protocol(error)
    }
}

impl From<StoreError> for TokenError {
    fn from(error: StoreError) -> Self {
        TokenError::Flow(error.into())
    }
}

/// An RFC 6749 section 5.2 error, with FusionAuth's `error_reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant` or `unsupported_grant_type`.
    pub error: &'static str,
    pub reason: &'static str,
    pub description: &'static str,
}

impl OAuthError {
    pub fn new(error: &'static str, reason: &'static str, description: &'static str) -> Self {
        Self {
            error,
            reason,
            description,
        }
    }

    pub(super) fn invalid_grant(reason: &'static str, description: &'static str) -> Self {
        Self::new("invalid_grant", reason, description)
    }

    pub(super) fn invalid_client(reason: &'static str, description: &'static str) -> Self {
        Self::new("invalid_client", reason, description)
    }

    /// 401 for a client that failed to authenticate, 400 otherwise (RFC 6749 5.2).
    pub fn status(&self) -> u16 {
        match self.error {
            "invalid_client" => 401,
            _ => 400,
        }
    }
}

/// What a successful token request answers.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub expires_in: i64,
    pub id_token: Option<String>,
    pub refresh_token: Option<Secret>,
    pub refresh_token_id: Option<crate::domain::ids::RefreshTokenId>,
    /// When the refresh token ends (for the cookie FusionAuth's refresh API sets).
    pub refresh_token_expires_at: Option<crate::domain::Instant>,
    pub scope: Option<String>,
    pub user_id: crate::domain::UserId,
}

/// The ports the token endpoint needs.
pub trait TokenStore:
    TenantStore + ApplicationStore + UserStore + SigningKeyStore + RefreshTokenStore + GrantStore
{
}

impl<T> TokenStore for T where
    T: TenantStore
        + ApplicationStore
        + UserStore
        + SigningKeyStore
        + RefreshTokenStore
        + GrantStore
        + ?Sized
{
}

/// The token endpoint: the grant the request names, for the client it presents.
#[instrument(skip_all)]
pub async fn exchange<S: TokenStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    request: TokenRequest,
) -> Result<Tokens, TokenError> {
    match request.grant {
        Grant::AuthorizationCode(grant) => {
            authorization_code::redeem(store, vault, clock, entropy, grant, request.client).await
        }
        Grant::RefreshToken(token) => {
            refresh_token::redeem(store, vault, clock, entropy, &token, request.client).await
        }
    }
}

/// The client of a request that needs no code: a known, active application, authenticated by
/// its secret unless it is a public client (one whose policy lets it skip authentication when
/// it uses PKCE, as its codes had to).
pub(crate) async fn authenticate_client<S: ApplicationStore + ?Sized>(
    store: &S,
    client_id: Option<&str>,
    secret: Option<&Secret>,
) -> Result<Application, TokenError> {
    let unknown = || OAuthError::invalid_client("invalid_client_id", "The client is unknown.");
    let Some(client_id) = client_id.and_then(ApplicationId::parse) else {
        return Err(unknown().into());
    };
    let Some(application) = store.application(client_id).await?.filter(|a| a.active) else {
        return Err(unknown().into());
    };
    check_client_secret(&application, secret, true)?;
    Ok(application)
}

/// The client's secret, where it gave one, must be its own; without one, the client must be
/// allowed to skip authentication (`used_pkce`: whether the grant it redeems was bound to a
/// PKCE challenge; a public client skips it only then).
pub(super) fn check_client_secret(
    application: &Application,
    secret: Option<&Secret>,
    used_pkce: bool,
) -> Result<(), OAuthError> {
    match secret {
        Some(secret) if application.client_secret_matches(secret) => Ok(()),
        Some(_) => Err(OAuthError::invalid_client(
            "invalid_client_authentication",
            "Client authentication failed.",
        )),
        None if application.requires_client_authentication(used_pkce) => {
            Err(OAuthError::invalid_client(
                "invalid_client_authentication",
                "The client must authenticate.",
            ))
        }
        None => Ok(()),
    }
}
