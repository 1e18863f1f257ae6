use serde::Serialize;

use super::ids::{ApplicationId, RefreshTokenId, TenantId, UserId};
use super::signing::SigningAlgorithm;

/// The claims of an access token, named and shaped as FusionAuth issues them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct AccessTokenClaims {
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
    /// The token's type, `at`, as FusionAuth's access tokens carry it: what tells an access
    /// token from an id token signed by the same key (S35).
    pub tty: &'static str,
}

/// The `tty` of an access token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "at";

/// The claims of an OpenID Connect id token (OIDC Core 2, 3.1.3.6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct IdTokenClaims {
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
    /// The left half of the access token's hash, base64url, with the hash of the id token's
    /// own algorithm (OIDC Core 3.1.3.6): SHA-256 for RS256, ES256 and HS256, SHA-384 for
    /// ES384, SHA-512 for HS512.
    pub fn at_hash(algorithm: SigningAlgorithm, access_token: &str) -> String {
        use sha2::{Digest, Sha256, Sha384, Sha512};
        let digest = match algorithm {
            SigningAlgorithm::Rs256 | SigningAlgorithm::Es256 | SigningAlgorithm::Hs256 => {
                Sha256::digest(access_token.as_bytes()).to_vec()
            }
            SigningAlgorithm::Es384 => Sha384::digest(access_token.as_bytes()).to_vec(),
            SigningAlgorithm::Hs512 => Sha512::digest(access_token.as_bytes()).to_vec(),
        };
        super::signing::b64url(&digest[..digest.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// N15: the hash follows the id token's algorithm; the halves' lengths tell them apart.
    #[test]
    fn n15_at_hash_uses_the_hash_of_the_id_tokens_algorithm() {
        let lengths: Vec<usize> = SigningAlgorithm::ALL
            .into_iter()
            .map(|a| IdTokenClaims::at_hash(a, "token").len())
            .collect();
        // RS256, ES256, ES384, HS256, HS512: 16, 16, 24, 16 and 32 bytes in base64url.
        assert_eq!(lengths, [22, 22, 32, 22, 43]);
        // OIDC Core's example: the left half of SHA-256 of the access token.
        use sha2::{Digest, Sha256};
        let full = Sha256::digest(b"token");
        assert_eq!(
            IdTokenClaims::at_hash(SigningAlgorithm::Rs256, "token"),
            super::super::signing::b64url(&full[..16])
        );
    }
}
