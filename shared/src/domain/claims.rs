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
