//! Access and refresh tokens issued at the end of a login, and what a finished login answers
//! whatever proved it (a link, a short code, a second factor).

use crate::domain::claims::{AccessTokenClaims, IdTokenClaims, ACCESS_TOKEN_TYPE};
use crate::domain::generator::CodeGenerator;
use crate::domain::ids::RefreshTokenId;
use std::sync::Arc;

use crate::domain::signing::PrivateKeyDer;
use serde_json::{Map, Value};

use crate::domain::{Application, ApplicationId, Instant, Secret, Tenant, User};
use crate::domain::{KeyId, SigningKey};
use crate::ports::{Entropy, KeyVault, RefreshTokenStore, SigningKeyStore, StoredRefreshToken};

use super::{random_id_bytes, FlowError, FlowResult};

pub(crate) struct AccessToken {
    pub token: String,
    pub expiration: Instant,
}

pub(crate) struct RefreshToken {
    pub token: Secret,
    pub id: RefreshTokenId,
    pub expires_at: Instant,
}

const REFRESH_TOKEN: CodeGenerator = CodeGenerator {
    length: 48,
    kind: crate::domain::GeneratorType::RandomBytes,
};

/// Creates a refresh token and stores only its hash (S2). `family` groups the tokens one
/// sign-in leads to (none: the token starts its own); `client_bound` keeps it to the token
/// endpoint and its authenticated client (S35).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn issue_refresh_token<S: RefreshTokenStore + ?Sized>(
    store: &S,
    entropy: &dyn Entropy,
    tenant: &Tenant,
    application: &Application,
    user: &User,
    now: Instant,
    family: Option<RefreshTokenId>,
    client_bound: bool,
) -> FlowResult<RefreshToken> {
    let (token, mut stored) = new_refresh_token(entropy, tenant, application, user, now, family)?;
    stored.client_bound = client_bound;
    store.insert_refresh_token(&stored).await?;
    Ok(RefreshToken {
        token,
        id: stored.id,
        expires_at: stored.expires_at,
    })
}

/// A fresh refresh token and its record, not stored yet.
pub(crate) fn new_refresh_token(
    entropy: &dyn Entropy,
    tenant: &Tenant,
    application: &Application,
    user: &User,
    now: Instant,
    family: Option<RefreshTokenId>,
) -> FlowResult<(Secret, StoredRefreshToken)> {
    let token = REFRESH_TOKEN.generate(entropy)?;
    let id = RefreshTokenId::from_random_bytes(random_id_bytes(entropy)?);
    let ttl_minutes = application.refresh_token_ttl_minutes(
        tenant
            .jwt_configuration
            .refresh_token_time_to_live_in_minutes,
    );
    let stored = StoredRefreshToken {
        id,
        token_hash: token.hash(),
        user_id: user.id,
        application_id: application.id,
        tenant_id: tenant.id,
        start_instant: now,
        expires_at: now.plus_secs(ttl_minutes.saturating_mul(60)),
        family,
        rotated: false,
        client_bound: false,
    };
    Ok((token, stored))
}

/// Signs an access token of a passwordless sign-in with the application's key, else the
/// tenant's. `applicationId` and `roles` are claimed only for a registered user, as FusionAuth
/// does.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn issue_access_token<S: SigningKeyStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    entropy: &dyn Entropy,
    tenant: &Tenant,
    application: &Application,
    user: &User,
    now: Instant,
    session: Option<RefreshTokenId>,
) -> FlowResult<AccessToken> {
    let issuing = Issuing {
        tenant,
        application,
        user,
        now,
        authentication_type: "PASSWORDLESS",
    };
    issue_access_token_for(store, vault, entropy, &issuing, session).await
}

/// Whom an access token is for, when, and how they got it (FusionAuth's
/// `authenticationType`: `PASSWORDLESS`, or `REGISTRATION` for the combined create).
pub(crate) struct Issuing<'a> {
    pub tenant: &'a Tenant,
    pub application: &'a Application,
    pub user: &'a User,
    pub now: Instant,
    pub authentication_type: &'static str,
}

/// Signs an access token as [`issue_access_token`] does, for any way of authenticating.
pub(crate) async fn issue_access_token_for<S: SigningKeyStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    entropy: &dyn Entropy,
    issuing: &Issuing<'_>,
    session: Option<RefreshTokenId>,
) -> FlowResult<AccessToken> {
    let Issuing {
        tenant,
        application,
        user,
        now,
        authentication_type,
    } = *issuing;
    let key_id = application
        .jwt_configuration
        .access_token_key_id
        .or(tenant.jwt_configuration.access_token_key_id)
        .ok_or_else(|| FlowError::Internal(format!("tenant {} has no signing key", tenant.id)))?;
    let ttl = application.token_ttl_seconds(tenant.jwt_configuration.time_to_live_in_seconds);
    let expiration = now.plus_secs(ttl);
    let registration = user.registration(application.id);
    let claims = AccessTokenClaims {
        aud: application.id.to_string(),
        exp: expiration.as_secs(),
        iat: now.as_secs(),
        iss: tenant.issuer.clone(),
        sub: user.id,
        jti: uuid::Builder::from_random_bytes(random_id_bytes(entropy)?)
            .into_uuid()
            .to_string(),
        authentication_type,
        email: user.email.clone(),
        email_verified: user.verified,
        preferred_username: user.username.clone(),
        application_id: registration.map(|_| application.id),
        roles: registration.map(|r| r.roles.clone()),
        auth_time: now.as_secs(),
        tid: tenant.id,
        sid: session,
        tty: ACCESS_TOKEN_TYPE,
    };
    Ok(AccessToken {
        token: sign(store, vault, tenant, key_id, &claims).await?,
        expiration,
    })
}

/// Signs `claims` with a key of the tenant (or a global one). Management refuses another
/// tenant's key (S22); a store written before that rule, or by hand, still never signs a
/// token with one.
async fn sign<S: SigningKeyStore + ?Sized, C: serde::Serialize>(
    store: &S,
    vault: &dyn KeyVault,
    tenant: &Tenant,
    key_id: KeyId,
    claims: &C,
) -> FlowResult<String> {
    let key = tenant_key(store, tenant, key_id).await?;
    sign_with(vault, &key, claims).await
}

/// The signing key `key_id`, refused if it is another tenant's.
async fn tenant_key<S: SigningKeyStore + ?Sized>(
    store: &S,
    tenant: &Tenant,
    key_id: KeyId,
) -> FlowResult<SigningKey> {
    let key = store
        .signing_key(key_id)
        .await?
        .ok_or_else(|| FlowError::Internal(format!("signing key {key_id} is missing")))?;
    if key.tenant_id.is_some_and(|owner| owner != tenant.id) {
        return Err(FlowError::Internal(format!(
            "signing key {key_id} belongs to another tenant"
        )));
    }
    Ok(key)
}

async fn sign_with<C: serde::Serialize>(
    vault: &dyn KeyVault,
    key: &SigningKey,
    claims: &C,
) -> FlowResult<String> {
    // The vault keeps what it opened parsed (CONTRIBUTING.md: expensive things are made once per process).
    let signer = match vault.signers().and_then(|signers| signers.get(key)) {
        Some(signer) => signer,
        None => {
            let private = vault
                .open(&key.sealed_private_key, &SigningKey::seal_context(key.id))
                .await?;
            let signer = Arc::new(key.signer(&PrivateKeyDer(private))?);
            if let Some(signers) = vault.signers() {
                signers.put(key, signer.clone());
            }
            signer
        }
    };
    Ok(signer.sign(claims)?)
}

/// What an OpenID Connect id token says beyond the user: who asked and when they signed in.
pub(crate) struct IdTokenFacts<'a> {
    pub nonce: Option<&'a str>,
    pub auth_time: Instant,
    pub access_token: &'a str,
    pub expiration: Instant,
    /// The refresh-token family, when the sign-in has one: OIDC's `sid`, what logout ends.
    pub session: Option<RefreshTokenId>,
}

/// Signs an id token with the application's id-token key, else the tenant's, else the
/// access-token key, as FusionAuth resolves it. `at_hash` binds it to its access token.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn issue_id_token<S: SigningKeyStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    tenant: &Tenant,
    application: &Application,
    user: &User,
    now: Instant,
    facts: IdTokenFacts<'_>,
) -> FlowResult<String> {
    let jwt = &application.jwt_configuration;
    let key_id = jwt
        .id_token_key_id
        .or(tenant.jwt_configuration.id_token_key_id)
        .or(jwt.access_token_key_id)
        .or(tenant.jwt_configuration.access_token_key_id)
        .ok_or_else(|| FlowError::Internal(format!("tenant {} has no signing key", tenant.id)))?;
    let key = tenant_key(store, tenant, key_id).await?;
    let registration = user.registration(application.id);
    let claims = IdTokenClaims {
        aud: application.id.to_string(),
        exp: facts.expiration.as_secs(),
        iat: now.as_secs(),
        iss: tenant.issuer.clone(),
        sub: user.id,
        auth_time: facts.auth_time.as_secs(),
        nonce: facts.nonce.map(str::to_owned),
        at_hash: IdTokenClaims::at_hash(key.algorithm, facts.access_token),
        authentication_type: "PASSWORDLESS",
        email: user.email.clone(),
        email_verified: user.verified,
        preferred_username: user.username.clone(),
        application_id: registration.map(|_| application.id),
        roles: registration.map(|r| r.roles.clone()),
        tid: tenant.id,
        sid: facts.session,
    };
    sign_with(vault, &key, &claims).await
}

/// What a successful login still lacks, in FusionAuth's order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginVerification {
    /// The user has no registration for the application (202).
    NotRegistered,
    /// The registration waits for its verification (213).
    RegistrationUnverified,
    /// The tenant gates users whose address is not verified, and the user's is not (212).
    EmailUnverified,
    /// Nothing (200).
    Verified,
}

impl LoginVerification {
    pub fn of(tenant: &Tenant, application: &Application, user: &User) -> Self {
        match user.registration(application.id) {
            None => LoginVerification::NotRegistered,
            Some(registration) if !registration.verified => {
                LoginVerification::RegistrationUnverified
            }
            Some(_) if tenant.email_configuration.gates_unverified() && !user.verified => {
                LoginVerification::EmailUnverified
            }
            Some(_) => LoginVerification::Verified,
        }
    }
}

pub struct LoggedIn {
    /// False when the user has no registration for the application (202).
    pub registered: bool,
    pub verification: LoginVerification,
    /// The application the login finished in.
    pub application_id: ApplicationId,
    pub token: Option<String>,
    pub token_expiration_instant: Option<Instant>,
    pub refresh_token: Option<Secret>,
    pub refresh_token_id: Option<RefreshTokenId>,
    pub refresh_token_expiration_instant: Option<Instant>,
    pub user: User,
    pub state: Option<Map<String, Value>>,
}

/// What a login that proved every factor it needs is finished with.
pub(crate) struct Completing<'a> {
    pub tenant: &'a Tenant,
    pub application: &'a Application,
    pub user: User,
    pub no_jwt: bool,
    pub state: Option<Map<String, Value>>,
    pub now: Instant,
}

/// Issues what a finished login answers: the refresh token (where the application makes them
/// and the user is registered) and the access token, unless `no_jwt`.
pub(crate) async fn complete_login<S>(
    store: &S,
    vault: &dyn KeyVault,
    entropy: &dyn Entropy,
    completing: Completing<'_>,
) -> FlowResult<LoggedIn>
where
    S: SigningKeyStore + RefreshTokenStore + ?Sized,
{
    let Completing {
        tenant,
        application,
        user,
        no_jwt,
        state,
        now,
    } = completing;
    let registered = user.registration(application.id).is_some();
    let (mut token, mut expiration, mut refresh_token, mut refresh_token_id) =
        (None, None, None, None);
    let mut refresh_expiration = None;
    if !no_jwt {
        if registered && application.login_configuration.generate_refresh_tokens {
            let refresh =
                issue_refresh_token(store, entropy, tenant, application, &user, now, None, false)
                    .await?;
            refresh_token_id = Some(refresh.id);
            refresh_token = Some(refresh.token);
            refresh_expiration = Some(refresh.expires_at);
        }
        let access = issue_access_token(
            store,
            vault,
            entropy,
            tenant,
            application,
            &user,
            now,
            refresh_token_id,
        )
        .await?;
        token = Some(access.token);
        expiration = Some(access.expiration);
    }
    Ok(LoggedIn {
        registered,
        verification: LoginVerification::of(tenant, application, &user),
        application_id: application.id,
        token,
        token_expiration_instant: expiration,
        refresh_token,
        refresh_token_id,
        refresh_token_expiration_instant: refresh_expiration,
        user,
        state,
    })
}
