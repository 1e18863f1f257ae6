//! The JSON bodies the API answers: one type per FusionAuth wire object, named as FusionAuth's
//! client libraries name it (`LoginResponse`, `UserResponse`, …; `TokenResponse` is RFC 6749's).
//! Handlers fill these in and [`json_response`](super::json_response) writes them. A field that
//! is `None` is left out, as FusionAuth leaves out nulls. The hosted pages' template contexts
//! are not wire objects and stay `serde_json` values.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::ids::RefreshTokenId;
use crate::domain::two_factor::TwoFactorMethod;
use crate::domain::validation::ValidationErrors;
use crate::domain::{ApplicationId, Instant, Secret, TenantId, User, UserId};
use crate::flows::verification::{Issued, VerificationKind};

/// A response whose body is one object under one name (`{"tenant": {…}}`).
macro_rules! wrapper {
    ($($(#[$doc:meta])* $name:ident { $field:ident: $type:ty })*) => {$(
        $(#[$doc])*
        #[derive(Debug, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name<'a> {
            pub $field: &'a $type,
        }
    )*};
}

wrapper! {
    TenantResponse { tenant: crate::domain::Tenant }
    TenantsResponse { tenants: [crate::domain::Tenant] }
    ApplicationResponse { application: Value }
    ApplicationsResponse { applications: [Value] }
    RoleResponse { role: crate::domain::application::ApplicationRole }
    EmailTemplateResponse { email_template: crate::domain::EmailTemplate }
    EmailTemplatesResponse { email_templates: [crate::domain::EmailTemplate] }
    SystemConfigurationResponse { system_configuration: crate::domain::system::SystemConfiguration }
    KeyResponse { key: KeyView }
    KeysResponse { keys: [KeyView] }
    ApiKeyResponse { api_key: ApiKeyView }
    /// `POST /api/jwt/validate`: the access token's claims.
    ValidateResponse { jwt: Value }
    /// The JSON Web Key Set (RFC 7517 section 5).
    JwksResponse { keys: [Value] }
    RefreshTokenResponse { refresh_token: RefreshTokenView }
    RefreshTokensResponse { refresh_tokens: [RefreshTokenView] }
}

/// FusionAuth's error body: `{"fieldErrors": {"field": [{code, message}]}, "generalErrors":
/// [{code, message}]}`, empty parts left out.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Errors<'a> {
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub field_errors: Map<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub general_errors: Vec<ErrorMessage<'a>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ErrorMessage<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

impl<'a> Errors<'a> {
    pub fn of(errors: &'a ValidationErrors) -> Self {
        let mut field_errors = Map::new();
        for error in &errors.field_errors {
            let entry = field_errors
                .entry(error.field.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.push(serde_json::json!({"code": error.code, "message": error.message}));
            }
        }
        Errors {
            field_errors,
            general_errors: errors
                .general_errors
                .iter()
                .map(|(code, message)| ErrorMessage { code, message })
                .collect(),
        }
    }

    pub fn general(code: &'a str, message: &'a str) -> Self {
        Errors {
            field_errors: Map::new(),
            general_errors: vec![ErrorMessage { code, message }],
        }
    }
}

/// `POST /api/passwordless/start`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartResponse<'a> {
    pub code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_time_code: Option<&'a str>,
}

/// A verification's id (and, for the `FormField` strategy, its one-time code).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerificationResponse<'a> {
    pub verification_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub one_time_code: Option<&'a str>,
}

/// The JWT and refresh token a login or a registration hands out.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IssuedTokens<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_expiration_instant: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_id: Option<RefreshTokenId>,
}

/// FusionAuth's `emailVerificationId` and `registrationVerificationId`, each with its
/// `…VerificationOneTimeCode` where the caller may see it.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerificationIds<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verification_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verification_one_time_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_verification_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_verification_one_time_code: Option<&'a str>,
}

impl<'a> VerificationIds<'a> {
    /// Adds an issued verification of `kind`: its id, and its one-time code when `with_code`
    /// (a create's caller holds a key that may create users; a login's caller gets the id
    /// alone, the code reaching the person by email).
    pub fn add(&mut self, kind: VerificationKind, issued: Option<&'a Issued>, with_code: bool) {
        let Some(issued) = issued else { return };
        let id = Some(issued.id.expose());
        let code = issued
            .one_time_code
            .as_ref()
            .filter(|_| with_code)
            .map(Secret::expose);
        match kind {
            VerificationKind::Email => {
                self.email_verification_id = id;
                self.email_verification_one_time_code = code;
            }
            VerificationKind::Registration => {
                self.registration_verification_id = id;
                self.registration_verification_one_time_code = code;
            }
        }
    }
}

/// A finished login: the passwordless login, its second step.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoginResponse<'a> {
    pub user: &'a User,
    #[serde(flatten)]
    pub tokens: IssuedTokens<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'a Map<String, Value>>,
    #[serde(flatten)]
    pub verifications: VerificationIds<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub two_factor_trust_id: Option<&'a str>,
}

/// A user created, read or changed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserResponse<'a> {
    pub user: &'a User,
    #[serde(flatten)]
    pub verifications: VerificationIds<'a>,
}

/// `POST /api/user/search`.
#[derive(Debug, Serialize)]
pub(crate) struct SearchResponse<'a> {
    pub total: usize,
    pub users: &'a [User],
}

/// A registration, with its user when it was read or made together, and the tokens when a
/// user was created with it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegistrationResponse<'a> {
    pub registration: &'a crate::domain::Registration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a User>,
    #[serde(flatten)]
    pub verifications: VerificationIds<'a>,
    #[serde(flatten)]
    pub tokens: IssuedTokens<'a>,
}

impl<'a> RegistrationResponse<'a> {
    pub fn of(registration: &'a crate::domain::Registration) -> Self {
        RegistrationResponse {
            registration,
            user: None,
            verifications: VerificationIds::default(),
            tokens: IssuedTokens::default(),
        }
    }
}

/// The 242 of a login whose second step waits: the step and the methods, nothing of the user.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TwoFactorStartResponse<'a> {
    pub two_factor_id: &'a str,
    pub methods: &'a [TwoFactorMethod],
}

/// `GET /api/two-factor/secret`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretResponse {
    pub secret: String,
    pub secret_base32_encoded: String,
    /// Ours: the `otpauth://` URI an authenticator app reads.
    #[serde(rename = "otpauthURI")]
    pub otpauth_uri: String,
}

/// Recovery codes: a method's first enabling and a regeneration show them once; a read shows
/// none and (ours) how many are left. An enabling under a required policy also answers the
/// `code` that finishes the waiting login.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TwoFactorResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
}

/// `GET /api/two-factor/status/{twoFactorTrustId}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TwoFactorStatusResponse<'a> {
    pub trusts: Vec<TwoFactorTrustView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub two_factor_trust_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TwoFactorTrustView {
    pub application_id: ApplicationId,
    pub expiration: Instant,
    pub expired: bool,
    pub start_instant: Instant,
}

/// `GET /api/jwt/public-key` for one key.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PublicKeyResponse<'a> {
    pub public_key: &'a str,
}

/// `GET /api/jwt/public-key` for every key: PEM by key id.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PublicKeysResponse {
    pub public_keys: Map<String, Value>,
}

/// `POST /api/jwt/refresh`: a new access token, and the rotated refresh token when the
/// application rotates them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JwtRefreshResponse<'a> {
    pub token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_id: Option<RefreshTokenId>,
}

/// FusionAuth's `RefreshToken` as management shows it; the token itself is stored only as its
/// hash, so it is never shown.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshTokenView {
    pub id: RefreshTokenId,
    pub application_id: ApplicationId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub insert_instant: Instant,
    pub start_instant: Instant,
    pub meta_data: Map<String, Value>,
    pub data: Map<String, Value>,
}

/// A signing key as responses show it: FusionAuth's shape, the public half only.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub id: crate::domain::KeyId,
    pub kid: crate::domain::KeyId,
    pub algorithm: &'static str,
    #[serde(rename = "type")]
    pub key_type: &'static str,
    pub has_private_key: bool,
    pub insert_instant: Instant,
    pub last_update_instant: Instant,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// An API key as responses show it: the key itself only in the response that made it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: crate::domain::ids::ApiKeyId,
    pub meta_data: ApiKeyMetaData,
    pub key_manager: bool,
    pub retrievable: bool,
    pub insert_instant: Instant,
    pub last_update_instant: Instant,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<crate::domain::api_key::ApiKeyPermissions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_instant: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ApiKeyMetaData {
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// `POST /api/email/template/preview`: FusionAuth's `PreviewResponse`.
#[derive(Debug, Serialize)]
pub(crate) struct PreviewResponse {
    pub email: PreviewEmail,
    pub errors: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PreviewEmail {
    pub subject: String,
    pub html: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<PreviewFrom>,
}

#[derive(Debug, Serialize)]
pub(crate) struct PreviewFrom {
    pub address: String,
    pub display: Option<String>,
}

/// `GET /api/status` without a key: whether the service is healthy.
#[derive(Debug, Serialize)]
pub struct StatusResponse {
    pub status: &'static str,
}

/// `GET /api/system/version`.
#[derive(Debug, Serialize)]
pub struct VersionResponse {
    pub version: &'static str,
}

/// The token endpoint's answer (RFC 6749 section 5.1), with FusionAuth's `refresh_token_id`
/// and `userId`.
#[derive(Debug, Serialize)]
pub struct TokenResponse<'a> {
    pub access_token: &'a str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_id: Option<RefreshTokenId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
    pub token_type: &'static str,
    #[serde(rename = "userId")]
    pub user_id: UserId,
}

/// An OAuth error (RFC 6749 section 5.2), with FusionAuth's `error_reason`.
#[derive(Debug, Serialize)]
pub(crate) struct OAuthErrorResponse<'a> {
    pub error: &'a str,
    pub error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<&'a str>,
}

/// An introspection's answer for a token that is not active (RFC 7662 section 2.2).
#[derive(Debug, Serialize)]
pub(crate) struct InactiveToken {
    pub active: bool,
}
