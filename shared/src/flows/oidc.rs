//! OpenID Connect around the token endpoint: discovery documents (one per tenant, since each
//! tenant has its own issuer and keys) and `userinfo`.

use crate::domain::claims::ACCESS_TOKEN_TYPE;
use serde_json::{json, Value};

use crate::domain::signing::PrivateKeyDer;
use crate::domain::tenant::DEFAULT_TENANT_ID;
use tracing::info;

use crate::domain::ids::RefreshTokenId;
use crate::domain::oauth::redirect_with;
use crate::domain::{Application, ApplicationId, SigningKey, Tenant, TenantId, UserId};
use crate::ports::{
    ApplicationStore, Clock, KeyVault, RefreshTokenStore, SigningKeyStore, TenantStore, UserStore,
};

use super::links::LinkBase;
use super::{FlowError, FlowResult};

/// The discovery document of `tenant` (the default tenant's at the root). Endpoints hang off
/// the configured public URL, never the request's Host (S13).
pub async fn discovery<S: TenantStore + ?Sized>(
    store: &S,
    links: &LinkBase,
    tenant: Option<TenantId>,
) -> FlowResult<Value> {
    let id = tenant.unwrap_or(DEFAULT_TENANT_ID);
    let tenant = store.tenant(id).await?.ok_or(FlowError::NotFound)?;
    let base = links.0.trim_end_matches('/');
    // Every tenant's discovery, the default's too, names the tenant's own key set: a client of
    // one tenant has no use for another's keys (N14).
    let jwks_uri = format!("{base}/{}/.well-known/jwks.json", tenant.id);
    Ok(json!({
        "issuer": tenant.issuer,
        "authorization_endpoint": format!("{base}/oauth2/authorize"),
        "token_endpoint": format!("{base}/oauth2/token"),
        "userinfo_endpoint": format!("{base}/oauth2/userinfo"),
        "end_session_endpoint": format!("{base}/oauth2/logout"),
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "jwks_uri": jwks_uri,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "ES384", "HS256", "HS512"],
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        // What is not served is said, so a strict client neither sends it nor expects it:
        // `request_uri_parameter_supported` defaults to true when left out (OIDC Discovery 3).
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "backchannel_logout_supported": false,
        "frontchannel_logout_supported": false,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "email", "email_verified", "preferred_username", "name", "given_name", "family_name", "tid"],
    }))
}

/// The claims of a token this service signed, with its tenant: a known key of that tenant (or
/// a global one), a valid signature, the tenant's issuer. Expiry is the caller's to judge (an
/// expired id token is still a good logout hint).
async fn our_token<S: TenantStore + SigningKeyStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    token: &str,
) -> FlowResult<Option<(Value, Tenant)>> {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    let Some(key_id) = header.kid.as_deref().and_then(crate::domain::KeyId::parse) else {
        return Ok(None);
    };
    // Only a key this server signs with makes a token ours.
    let Some(key) = store
        .signing_key(key_id)
        .await?
        .filter(SigningKey::can_sign)
    else {
        return Ok(None);
    };
    let secret = if key.algorithm.is_hmac() {
        Some(PrivateKeyDer(
            vault
                .open(&key.sealed_private_key, &SigningKey::seal_context(key.id))
                .await?,
        ))
    } else {
        None
    };
    let Ok(claims) = key.verify(token, secret.as_ref()) else {
        return Ok(None);
    };
    let Some(tenant_id) = claims["tid"].as_str().and_then(TenantId::parse) else {
        return Ok(None);
    };
    let Some(tenant) = store.tenant(tenant_id).await? else {
        return Ok(None);
    };
    let own_key = key.tenant_id.is_none_or(|owner| owner == tenant.id);
    if !own_key || claims["iss"].as_str() != Some(tenant.issuer.as_str()) {
        return Ok(None);
    }
    Ok(Some((claims, tenant)))
}

/// The claims of a live access token of ours (as [`our_token`], unexpired by `clock`, and an
/// access token: an id token, signed by the same key, is never taken for one, S35).
pub(crate) async fn live_token<S: TenantStore + SigningKeyStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    clock: &dyn Clock,
    token: &str,
) -> FlowResult<Option<(Value, Tenant)>> {
    Ok(our_token(store, vault, token).await?.filter(|(claims, _)| {
        claims["tty"].as_str() == Some(ACCESS_TOKEN_TYPE)
            && claims["exp"]
                .as_i64()
                .is_some_and(|exp| exp > clock.now().as_secs())
    }))
}

/// The user behind a bearer access token, as OIDC's `userinfo` shows it, or `None` for a token
/// that is not a live one of ours (bad signature, unknown key, another tenant's key or issuer,
/// expired, an inactive user).
pub async fn userinfo<S: TenantStore + UserStore + SigningKeyStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    clock: &dyn Clock,
    token: &str,
) -> FlowResult<Option<Value>> {
    let Some((claims, tenant)) = live_token(store, vault, clock, token).await? else {
        return Ok(None);
    };
    let Some(user_id) = claims["sub"].as_str().and_then(UserId::parse) else {
        return Ok(None);
    };
    let Some(user) = store
        .user(user_id)
        .await?
        .filter(|u| u.active && u.tenant_id == tenant.id)
    else {
        return Ok(None);
    };
    let mut info = serde_json::Map::new();
    info.insert("sub".into(), json!(user.id));
    info.insert("tid".into(), json!(tenant.id));
    info.insert("email_verified".into(), json!(user.verified));
    for (name, value) in [
        ("email", &user.email),
        ("preferred_username", &user.username),
        ("name", &user.full_name),
        ("given_name", &user.first_name),
        ("family_name", &user.last_name),
    ] {
        if let Some(value) = value {
            info.insert(name.into(), json!(value));
        }
    }
    Ok(Some(Value::Object(info)))
}

/// What `/oauth2/logout` was given (OIDC RP-Initiated Logout).
#[derive(Debug, Clone, Default)]
pub struct LogoutRequest {
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub id_token_hint: Option<String>,
    pub state: Option<String>,
}

/// Where logout ends: an allowed URI of the client, or the service's own "signed out" page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutEnd {
    Redirect(String),
    SignedOut,
}

/// Ends the session an id token names (its `sid`, the refresh-token family: every refresh
/// token of that sign-in dies) and picks where to send the browser: the requested URI only if
/// it equals the client's `logoutURL` or one of its authorized redirect URIs (S17), else the
/// `logoutURL`, else the signed-out page. An expired id token is still a good hint.
pub async fn logout<
    S: TenantStore + ApplicationStore + SigningKeyStore + RefreshTokenStore + ?Sized,
>(
    store: &S,
    vault: &dyn KeyVault,
    request: LogoutRequest,
) -> FlowResult<LogoutEnd> {
    let hint = match request.id_token_hint.as_deref() {
        Some(token) => our_token(store, vault, token)
            .await?
            .map(|(claims, _)| claims),
        None => None,
    };
    let client = request
        .client_id
        .as_deref()
        .or_else(|| hint.as_ref().and_then(|h| h["aud"].as_str()))
        .and_then(ApplicationId::parse);
    let application = match client {
        Some(id) => store.application(id).await?,
        None => None,
    };
    let Some(application) = application else {
        return Ok(LogoutEnd::SignedOut);
    };
    if let Some(hint) = &hint {
        let same_client = hint["aud"].as_str() == Some(application.id.to_string().as_str());
        let session = hint["sid"].as_str().and_then(RefreshTokenId::parse);
        if let (true, Some(session)) = (same_client, session) {
            store.revoke_refresh_family(session).await?;
            info!(application_id = %application.id, "logout: the session's refresh tokens are revoked");
        }
    }
    let oauth = &application.oauth_configuration;
    let allowed = |uri: &str| {
        oauth.logout_url.as_deref() == Some(uri)
            || oauth.authorized_redirect_urls.iter().any(|u| u == uri)
    };
    let target = match request.post_logout_redirect_uri.as_deref() {
        Some(uri) if allowed(uri) => Some(uri.to_owned()),
        _ => oauth.logout_url.clone(),
    };
    Ok(match target {
        Some(uri) => {
            let state = request.state.as_deref().map(|s| ("state", s));
            LogoutEnd::Redirect(match state {
                Some(pair) => redirect_with(&uri, &[pair]),
                None => uri,
            })
        }
        None => LogoutEnd::SignedOut,
    })
}

/// RFC 7662 introspection of an access token for `client`: active only for a live token of
/// ours issued to that client (another client learns nothing about it).
pub async fn introspect<S: TenantStore + SigningKeyStore + ?Sized>(
    store: &S,
    vault: &dyn KeyVault,
    clock: &dyn Clock,
    client: &Application,
    token: &str,
) -> FlowResult<Value> {
    let live = live_token(store, vault, clock, token).await?;
    Ok(match live {
        Some((mut claims, _)) if claims["aud"].as_str() == Some(client.id.to_string().as_str()) => {
            if let Value::Object(map) = &mut claims {
                map.insert("active".into(), json!(true));
            }
            claims
        }
        _ => json!({"active": false}),
    })
}
