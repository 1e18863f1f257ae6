//! OpenID Connect around the token endpoint: discovery documents (one per tenant, since each
//! tenant has its own issuer and keys) and `userinfo`.

use serde_json::{json, Value};

use crate::domain::signing::PrivateKeyDer;
use crate::domain::tenant::DEFAULT_TENANT_ID;
use crate::domain::{SigningAlgorithm, SigningKey, TenantId, UserId};
use crate::ports::{Clock, KeyVault, SigningKeyStore, TenantStore, UserStore};

use super::passwordless::LinkBase;
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
    let jwks_uri = match tenant.id == DEFAULT_TENANT_ID {
        true => format!("{base}/.well-known/jwks.json"),
        false => format!("{base}/{}/.well-known/jwks.json", tenant.id),
    };
    Ok(json!({
        "issuer": tenant.issuer,
        "authorization_endpoint": format!("{base}/oauth2/authorize"),
        "token_endpoint": format!("{base}/oauth2/token"),
        "userinfo_endpoint": format!("{base}/oauth2/userinfo"),
        "jwks_uri": jwks_uri,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "HS256"],
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "email", "email_verified", "preferred_username", "name", "given_name", "family_name", "tid"],
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
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    let Some(key_id) = header.kid.as_deref().and_then(crate::domain::KeyId::parse) else {
        return Ok(None);
    };
    let Some(key) = store.signing_key(key_id).await? else {
        return Ok(None);
    };
    let secret = match key.algorithm {
        SigningAlgorithm::Hs256 => Some(PrivateKeyDer(
            vault
                .open(&key.sealed_private_key, &SigningKey::seal_context(key.id))
                .await?,
        )),
        _ => None,
    };
    let Ok(claims) = key.verify(token, secret.as_ref()) else {
        return Ok(None);
    };
    let tenant_id = claims["tid"].as_str().and_then(TenantId::parse);
    let user_id = claims["sub"].as_str().and_then(UserId::parse);
    let (Some(tenant_id), Some(user_id)) = (tenant_id, user_id) else {
        return Ok(None);
    };
    let Some(tenant) = store.tenant(tenant_id).await? else {
        return Ok(None);
    };
    let live = claims["exp"]
        .as_i64()
        .is_some_and(|exp| exp > clock.now().as_secs());
    let own_key = key.tenant_id.is_none_or(|owner| owner == tenant.id);
    if !live || !own_key || claims["iss"].as_str() != Some(tenant.issuer.as_str()) {
        return Ok(None);
    }
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
