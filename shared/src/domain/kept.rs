//! FusionAuth properties this product stores and returns without acting on them, so that a
//! FusionAuth export or kickstart file moves over without losing anything, and the refusal of
//! properties FusionAuth does not know (its JSON binding answers those `[invalidJSON]`).
//!
//! Each object that FusionAuth defines with more properties than this product reads carries a
//! [`Kept`] map (`#[serde(flatten)]`) beside its typed fields, and its `validate` checks the
//! map's names against FusionAuth's list for that object with [`check_kept`].

use serde_json::{Map, Value};

use super::validation::ValidationErrors;

/// The properties of one object that are FusionAuth's but not read here.
pub(crate) type Kept = Map<String, Value>;

/// `[invalidJSON]` for each property of `kept` that FusionAuth's object at `path` does not have.
pub(crate) fn check_kept(errors: &mut ValidationErrors, path: &str, kept: &Kept, known: &[&str]) {
    for name in kept.keys().filter(|name| !known.contains(&name.as_str())) {
        errors.push_invalid_json(Some(&format!("{path}.{name}")), "Unrecognized property");
    }
}

/// A kept property that would change security behaviour if it were honoured, and is not yet:
/// refused by name rather than stored and silently ignored.
pub(crate) fn refuse_unhonoured(
    errors: &mut ValidationErrors,
    field: &str,
    present: bool,
    why: &str,
) {
    if present {
        errors.push(super::validation::FieldError::new(
            "notSupported",
            field,
            format!("[{field}] is not supported by this server: {why}"),
        ));
    }
}

/// FusionAuth's `Tenant` (client libraries 1.69).
pub(crate) const TENANT: &[&str] = &[
    "accessControlConfiguration",
    "baseURL",
    "captchaConfiguration",
    "clientRiskConfiguration",
    "configured",
    "connectorPolicies",
    "data",
    "eventConfiguration",
    "failedAuthenticationConfiguration",
    "familyConfiguration",
    "formConfiguration",
    "httpSessionMaxInactiveInterval",
    "lambdaConfiguration",
    "loginConfiguration",
    "logoutURL",
    "maximumPasswordAge",
    "minimumPasswordAge",
    "oauthConfiguration",
    "passwordEncryptionConfiguration",
    "passwordValidationRules",
    "phoneConfiguration",
    "registrationConfiguration",
    "scimServerConfiguration",
    "ssoConfiguration",
    "state",
    "themeId",
    "userDeletePolicy",
    "usernameConfiguration",
    "webAuthnConfiguration",
];

/// FusionAuth's `EmailConfiguration` (a tenant's `emailConfiguration`).
pub(crate) const TENANT_EMAIL: &[&str] = &[
    "additionalHeaders",
    "adminTwoFactorMethodRemoveEmailTemplateId",
    "debug",
    "emailUpdateEmailTemplateId",
    "emailVerifiedEmailTemplateId",
    "forgotPasswordEmailTemplateId",
    "host",
    "loginIdInUseOnCreateEmailTemplateId",
    "loginIdInUseOnUpdateEmailTemplateId",
    "loginNewDeviceEmailTemplateId",
    "loginSuspiciousEmailTemplateId",
    "password",
    "passwordResetSuccessEmailTemplateId",
    "passwordUpdateEmailTemplateId",
    "port",
    "properties",
    "security",
    "setPasswordEmailTemplateId",
    "twoFactorMethodAddEmailTemplateId",
    "twoFactorMethodRemoveEmailTemplateId",
    "unverified",
    "username",
    "verificationEmailTemplateId",
    "verificationStrategy",
    "verifyEmail",
    "verifyEmailWhenChanged",
];

/// FusionAuth's `ExternalIdentifierConfiguration`.
pub(crate) const EXTERNAL_IDENTIFIERS: &[&str] = &[
    "changePasswordIdGenerator",
    "changePasswordIdTimeToLiveInSeconds",
    "deviceCodeTimeToLiveInSeconds",
    "deviceUserCodeIdGenerator",
    "emailVerificationIdGenerator",
    "emailVerificationIdTimeToLiveInSeconds",
    "emailVerificationOneTimeCodeGenerator",
    "externalAuthenticationIdTimeToLiveInSeconds",
    "identityProviderConnectionTestTimeToLiveInSeconds",
    "loginIntentTimeToLiveInSeconds",
    "oneTimePasswordTimeToLiveInSeconds",
    "pendingAccountLinkTimeToLiveInSeconds",
    "phoneVerificationIdGenerator",
    "phoneVerificationIdTimeToLiveInSeconds",
    "phoneVerificationOneTimeCodeGenerator",
    "registrationVerificationIdGenerator",
    "registrationVerificationIdTimeToLiveInSeconds",
    "registrationVerificationOneTimeCodeGenerator",
    "rememberOAuthScopeConsentChoiceTimeToLiveInSeconds",
    "samlv2AuthNRequestIdTimeToLiveInSeconds",
    "setupPasswordIdGenerator",
    "setupPasswordIdTimeToLiveInSeconds",
    "trustTokenTimeToLiveInSeconds",
    "twoFactorOneTimeCodeIdGenerator",
    "webAuthnAuthenticationChallengeTimeToLiveInSeconds",
    "webAuthnRegistrationChallengeTimeToLiveInSeconds",
];

/// FusionAuth's `JWTConfiguration` (tenants' and applications').
pub const JWT: &[&str] = &[
    "enabled",
    "accessTokenVerificationKeyIds",
    "idTokenVerificationKeyIds",
    "refreshTokenExpirationPolicy",
    "refreshTokenOneTimeUseConfiguration",
    "refreshTokenRevocationPolicy",
    "refreshTokenSlidingWindowConfiguration",
    "refreshTokenUsagePolicy",
];

/// FusionAuth's `TenantRateLimitConfiguration`.
pub(crate) const RATE_LIMITS: &[&str] = &[
    "failedLogin",
    "forgotPassword",
    "sendEmailVerification",
    "sendPasswordlessPhone",
    "sendPhoneVerification",
    "sendRegistrationVerification",
    "sendTwoFactor",
];

/// FusionAuth's `Application`.
pub(crate) const APPLICATION: &[&str] = &[
    "accessControlConfiguration",
    "authenticationTokenConfiguration",
    "baseURL",
    "cleanSpeakConfiguration",
    "data",
    "externalIdentifierConfiguration",
    "formConfiguration",
    "lambdaConfiguration",
    "phoneConfiguration",
    "registrationConfiguration",
    "registrationDeletePolicy",
    "samlv2Configuration",
    "scopes",
    "state",
    "themeId",
    "universalConfiguration",
    "unverified",
    "verificationEmailTemplateId",
    "verificationStrategy",
    "verifyRegistration",
    "webAuthnConfiguration",
];

/// FusionAuth's `ApplicationRole`.
pub(crate) const ROLE: &[&str] = &["insertInstant", "lastUpdateInstant"];

/// FusionAuth's `ApplicationEmailConfiguration`.
pub(crate) const APPLICATION_EMAIL: &[&str] = &[
    "emailUpdateEmailTemplateId",
    "emailVerificationEmailTemplateId",
    "emailVerifiedEmailTemplateId",
    "forgotPasswordEmailTemplateId",
    "loginIdInUseOnCreateEmailTemplateId",
    "loginIdInUseOnUpdateEmailTemplateId",
    "loginNewDeviceEmailTemplateId",
    "loginSuspiciousEmailTemplateId",
    "passwordResetSuccessEmailTemplateId",
    "passwordUpdateEmailTemplateId",
    "setPasswordEmailTemplateId",
    "twoFactorMethodAddEmailTemplateId",
    "twoFactorMethodRemoveEmailTemplateId",
];

/// FusionAuth's `PasswordlessConfiguration`.
pub const PASSWORDLESS: &[&str] = &["phoneLoginStrategy"];

/// FusionAuth's `OAuth2Configuration`.
pub(crate) const OAUTH: &[&str] = &[
    "authorizedOriginURLs",
    "authorizedResourceUris",
    "authorizedURLValidationPolicy",
    "consentMode",
    "debug",
    "deviceVerificationURL",
    "generateRefreshTokens",
    "logoutBehavior",
    "providedScopePolicy",
    "relationship",
    "requireClientAuthentication",
    "requireRegistration",
    "scopeHandlingPolicy",
    "unknownScopePolicy",
];

/// FusionAuth's `LoginConfiguration` (an application's).
pub(crate) const LOGIN: &[&str] = &["allowTokenRefresh"];

/// FusionAuth's `User` with its `SecureIdentity` base. Password properties are FusionAuth's
/// too, but a passwordless server keeps no password: the edge drops them before this list is
/// consulted.
pub(crate) const USER: &[&str] = &[
    "breachedPasswordLastCheckedInstant",
    "breachedPasswordStatus",
    "cleanSpeakId",
    "connectorId",
    "identities",
    "legacyIdentifier",
    "memberships",
    "parentEmail",
    "passwordChangeReason",
    "passwordLastUpdateInstant",
    "phoneNumber",
    "uniqueUsername",
    "usernameStatus",
    "verifiedInstant",
];

/// The password properties of FusionAuth's `SecureIdentity`: accepted and dropped.
pub(crate) const USER_PASSWORD: &[&str] = &["password", "encryptionScheme", "factor", "salt"];

/// FusionAuth's `UserRegistration`.
pub const REGISTRATION: &[&str] = &[
    "authenticationToken",
    "cleanSpeakId",
    "lastUpdateInstant",
    "tokens",
    "usernameStatus",
    "verifiedInstant",
];

/// FusionAuth's `EmailTemplate`.
pub(crate) const EMAIL_TEMPLATE: &[&str] = &["localizedFromNames"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_property_fusionauth_has_is_kept_and_one_it_does_not_is_refused() {
        let mut kept = Kept::new();
        kept.insert("themeId".into(), Value::Null);
        kept.insert("colour".into(), Value::Null);
        let mut errors = ValidationErrors::new();
        check_kept(&mut errors, "tenant", &kept, TENANT);
        assert_eq!(errors.general_errors.len(), 1);
        assert!(errors.general_errors[0].1.contains("[tenant.colour]"));
    }
}
