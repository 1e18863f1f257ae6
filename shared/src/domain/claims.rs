use serde::Serialize;

use super::ids::{ApplicationId, RefreshTokenId, TenantId, UserId};

/// The claims of an access token, named and shaped as FusionAuth issues them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessTokenClaims {
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub sub: UserId,
    pub jti: String,
    #[serde(rename = "authenticationType")]
    pub authentication_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(rename = "applicationId", skip_serializing_if = "Option::is_none")]
    pub application_id: Option<ApplicationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    pub auth_time: i64,
    pub tid: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<RefreshTokenId>,
}

/// The claims of an OpenID Connect id token (OIDC Core 2, 3.1.3.6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdTokenClaims {
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub sub: UserId,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub at_hash: String,
    #[serde(rename = "authenticationType")]
    pub authentication_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(rename = "applicationId", skip_serializing_if = "Option::is_none")]
    pub application_id: Option<ApplicationId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    pub tid: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<RefreshTokenId>,
}

impl IdTokenClaims {
    /// The left half of the access token's SHA-256, base64url: every algorithm served here
    /// (RS256, ES256, HS256) hashes with SHA-256.
    pub fn at_hash(access_token: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(access_token.as_bytes());
        super::signing::b64url(&digest[..16])
    }
}
