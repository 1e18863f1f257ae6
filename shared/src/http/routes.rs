//! The one route table. The local server and every Lambda function dispatch through it.

use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    PasswordlessStart,
    PasswordlessSend,
    PasswordlessLogin,
    TenantCreate,
    TenantCreateWithId,
    TenantPatch,
    TenantRetrieve,
    TenantList,
    TenantUpdate,
    TenantDelete,
    ApplicationCreate,
    ApplicationCreateWithId,
    ApplicationRetrieve,
    ApplicationList,
    ApplicationUpdate,
    ApplicationPatch,
    ApplicationDelete,
    ApplicationRoleCreate,
    ApplicationRoleCreateWithId,
    ApplicationRoleUpdate,
    ApplicationRolePatch,
    ApplicationRoleDelete,
    UserRegistration,
    UserRegistrationWithId,
    RegistrationRetrieve,
    RegistrationUpdate,
    RegistrationPatch,
    RegistrationUpdateForApplication,
    RegistrationPatchForApplication,
    RegistrationDelete,
    EmailTemplateCreate,
    EmailTemplateCreateWithId,
    EmailTemplateRetrieve,
    EmailTemplateList,
    EmailTemplateUpdate,
    EmailTemplatePatch,
    EmailTemplateDelete,
    EmailTemplatePreview,
    ApiKeyCreate,
    ApiKeyCreateWithId,
    ApiKeyRetrieve,
    ApiKeyUpdate,
    ApiKeyDelete,
    KeyGenerate,
    KeyGenerateWithId,
    KeyImport,
    KeyImportWithId,
    KeyRetrieve,
    KeyList,
    KeyDelete,
    JwtValidate,
    JwtRefresh,
    RefreshTokenList,
    RefreshTokenRetrieve,
    RefreshTokenRevoke,
    RefreshTokenRevokeById,
    JwtPublicKey,
    UserRetrieve,
    UserByLoginId,
    UserCreate,
    UserCreateWithId,
    UserUpdate,
    UserPatch,
    UserDelete,
    UserReactivate,
    UserSearch,
    UserSearchByQuery,
    Jwks,
    TenantJwks,
    PasswordlessLinkPage,
    PasswordlessLinkComplete,
    OAuthToken,
    OAuthAuthorize,
    PasswordlessLinkRequest,
    OneTimeCodeComplete,
    OpenIdConfiguration,
    TenantOpenIdConfiguration,
    UserInfo,
    Logout,
    Introspect,
    UserVerifyEmail,
    UserVerifyEmailReissue,
    UserVerifyRegistration,
    UserVerifyRegistrationReissue,
    EmailVerifyPage,
    EmailVerifyComplete,
    RegistrationVerifyPage,
    RegistrationVerifyComplete,
    SystemConfigurationRetrieve,
    SystemConfigurationUpdate,
    SystemConfigurationPatch,
    CorsPreflight,
    TwoFactorSecret,
    TwoFactorEnable,
    TwoFactorDisable,
    TwoFactorTrustsEnd,
    TwoFactorSend,
    TwoFactorSendForLogin,
    TwoFactorLogin,
    TwoFactorStatus,
    TwoFactorRecoveryCodes,
    TwoFactorRecoveryCodesGenerate,
    TwoFactorComplete,
}

impl Route {
    /// Whether the route answers a browser with HTML pages: its failures are pages too.
    pub const fn answers_html(self) -> bool {
        matches!(
            self,
            Route::OAuthAuthorize
                | Route::PasswordlessLinkRequest
                | Route::OneTimeCodeComplete
                | Route::PasswordlessLinkPage
                | Route::PasswordlessLinkComplete
                | Route::Logout
                | Route::EmailVerifyPage
                | Route::EmailVerifyComplete
                | Route::RegistrationVerifyPage
                | Route::RegistrationVerifyComplete
                | Route::TwoFactorComplete
        )
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No API key, as in FusionAuth (send, login, the JWKS).
    Public,
    /// An API key whose permissions cover this endpoint (S21).
    ApiKey { endpoint: &'static str },
    /// Public, but a key presented is checked, and forms that act on an address rather than a
    /// code need one permitted for `endpoint` (send's `{applicationId, loginId}` form, S31).
    PublicWithKeyForm { endpoint: &'static str },
    /// Only a key with no permissions and no tenant lock: managing keys is managing everything.
    /// No permission can name these routes (S28), so no limited key ever reaches them.
    UnrestrictedKey,
}

impl Access {
    /// The endpoint name API-key permissions use for this route, if a key can matter here.
    pub fn endpoint(self) -> Option<&'static str> {
        match self {
            Access::Public | Access::UnrestrictedKey => None,
            Access::ApiKey { endpoint } | Access::PublicWithKeyForm { endpoint } => Some(endpoint),
        }
    }
}

/// Whether API-key permissions may name `endpoint` with `method`: only pairs the route table
/// serves (S28: a typo must not become a permission that means something else, or nothing).
pub fn is_permissible(endpoint: &str, method: &str) -> bool {
    ROUTES.iter().any(|spec| {
        spec.access.endpoint() == Some(endpoint)
            && (spec.method.eq_ignore_ascii_case(method)
                || (spec.method == "GET" && method.eq_ignore_ascii_case("HEAD")))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub route: Route,
    pub method: &'static str,
    /// `{name}` matches one path segment.
    pub path: &'static str,
    /// The Lambda function that serves the route.
    pub function: &'static str,
    pub access: Access,
}

const fn spec(
    route: Route,
    method: &'static str,
    path: &'static str,
    function: &'static str,
    access: Access,
) -> RouteSpec {
    RouteSpec {
        route,
        method,
        path,
        function,
        access,
    }
}

const fn key(endpoint: &'static str) -> Access {
    Access::ApiKey { endpoint }
}

pub const ROUTES: &[RouteSpec] = &[
    spec(
        Route::PasswordlessStart,
        "POST",
        "/api/passwordless/start",
        "passwordless-start",
        key("/api/passwordless/start"),
    ),
    spec(
        Route::PasswordlessSend,
        "POST",
        "/api/passwordless/send",
        "passwordless-send",
        Access::PublicWithKeyForm {
            endpoint: "/api/passwordless/send",
        },
    ),
    spec(
        Route::PasswordlessLogin,
        "POST",
        "/api/passwordless/login",
        "passwordless-login",
        Access::Public,
    ),
    // A login's second step runs where its first did: the same keys, tables and mailer.
    spec(
        Route::TwoFactorLogin,
        "POST",
        "/api/two-factor/login",
        "passwordless-login",
        Access::Public,
    ),
    spec(
        Route::TwoFactorSendForLogin,
        "POST",
        "/api/two-factor/send/{twoFactorId}",
        "passwordless-login",
        Access::Public,
    ),
    spec(
        Route::TwoFactorSend,
        "POST",
        "/api/two-factor/send",
        "management",
        key("/api/two-factor/send"),
    ),
    spec(
        Route::TwoFactorSecret,
        "GET",
        "/api/two-factor/secret",
        "management",
        key("/api/two-factor/secret"),
    ),
    spec(
        Route::TwoFactorStatus,
        "GET",
        "/api/two-factor/status/{twoFactorTrustId}",
        "management",
        key("/api/two-factor/status"),
    ),
    spec(
        Route::TenantCreate,
        "POST",
        "/api/tenant",
        "management",
        key("/api/tenant"),
    ),
    spec(
        Route::TenantCreateWithId,
        "POST",
        "/api/tenant/{tenantId}",
        "management",
        key("/api/tenant"),
    ),
    spec(
        Route::TenantPatch,
        "PATCH",
        "/api/tenant/{tenantId}",
        "management",
        key("/api/tenant"),
    ),
    spec(
        Route::TenantRetrieve,
        "GET",
        "/api/tenant/{tenantId}",
        "management",
        key("/api/tenant"),
    ),
    spec(
        Route::TenantList,
        "GET",
        "/api/tenant",
        "management",
        key("/api/tenant"),
    ),
    spec(
        Route::TenantUpdate,
        "PUT",
        "/api/tenant/{tenantId}",
        "management",
        key("/api/tenant"),
    ),
    spec(
        Route::TenantDelete,
        "DELETE",
        "/api/tenant/{tenantId}",
        "management",
        key("/api/tenant"),
    ),
    spec(
        Route::ApplicationCreate,
        "POST",
        "/api/application",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationCreateWithId,
        "POST",
        "/api/application/{applicationId}",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationRetrieve,
        "GET",
        "/api/application/{applicationId}",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationList,
        "GET",
        "/api/application",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationUpdate,
        "PUT",
        "/api/application/{applicationId}",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationPatch,
        "PATCH",
        "/api/application/{applicationId}",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationDelete,
        "DELETE",
        "/api/application/{applicationId}",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationRoleCreate,
        "POST",
        "/api/application/{applicationId}/role",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationRoleCreateWithId,
        "POST",
        "/api/application/{applicationId}/role/{roleId}",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationRoleUpdate,
        "PUT",
        "/api/application/{applicationId}/role/{roleId}",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationRolePatch,
        "PATCH",
        "/api/application/{applicationId}/role/{roleId}",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::ApplicationRoleDelete,
        "DELETE",
        "/api/application/{applicationId}/role/{roleId}",
        "management",
        key("/api/application"),
    ),
    spec(
        Route::UserRegistration,
        "POST",
        "/api/user/registration",
        "management",
        key("/api/user/registration"),
    ),
    spec(
        Route::UserRegistrationWithId,
        "POST",
        "/api/user/registration/{userId}",
        "management",
        key("/api/user/registration"),
    ),
    spec(
        Route::RegistrationRetrieve,
        "GET",
        "/api/user/registration/{userId}/{applicationId}",
        "management",
        key("/api/user/registration"),
    ),
    spec(
        Route::RegistrationUpdate,
        "PUT",
        "/api/user/registration/{userId}",
        "management",
        key("/api/user/registration"),
    ),
    spec(
        Route::RegistrationPatch,
        "PATCH",
        "/api/user/registration/{userId}",
        "management",
        key("/api/user/registration"),
    ),
    spec(
        Route::RegistrationUpdateForApplication,
        "PUT",
        "/api/user/registration/{userId}/{applicationId}",
        "management",
        key("/api/user/registration"),
    ),
    spec(
        Route::RegistrationPatchForApplication,
        "PATCH",
        "/api/user/registration/{userId}/{applicationId}",
        "management",
        key("/api/user/registration"),
    ),
    spec(
        Route::RegistrationDelete,
        "DELETE",
        "/api/user/registration/{userId}/{applicationId}",
        "management",
        key("/api/user/registration"),
    ),
    spec(
        Route::ApiKeyCreate,
        "POST",
        "/api/api-key",
        "management",
        Access::UnrestrictedKey,
    ),
    spec(
        Route::ApiKeyCreateWithId,
        "POST",
        "/api/api-key/{keyId}",
        "management",
        Access::UnrestrictedKey,
    ),
    spec(
        Route::ApiKeyRetrieve,
        "GET",
        "/api/api-key/{keyId}",
        "management",
        Access::UnrestrictedKey,
    ),
    spec(
        Route::ApiKeyUpdate,
        "PUT",
        "/api/api-key/{keyId}",
        "management",
        Access::UnrestrictedKey,
    ),
    spec(
        Route::ApiKeyDelete,
        "DELETE",
        "/api/api-key/{keyId}",
        "management",
        Access::UnrestrictedKey,
    ),
    spec(
        Route::KeyGenerate,
        "POST",
        "/api/key/generate",
        "management",
        key("/api/key"),
    ),
    spec(
        Route::KeyGenerateWithId,
        "POST",
        "/api/key/generate/{keyId}",
        "management",
        key("/api/key"),
    ),
    spec(
        Route::KeyImport,
        "POST",
        "/api/key/import",
        "management",
        key("/api/key"),
    ),
    spec(
        Route::KeyImportWithId,
        "POST",
        "/api/key/import/{keyId}",
        "management",
        key("/api/key"),
    ),
    spec(
        Route::KeyRetrieve,
        "GET",
        "/api/key/{keyId}",
        "management",
        key("/api/key"),
    ),
    spec(
        Route::KeyList,
        "GET",
        "/api/key",
        "management",
        key("/api/key"),
    ),
    spec(
        Route::KeyDelete,
        "DELETE",
        "/api/key/{keyId}",
        "management",
        key("/api/key"),
    ),
    spec(
        Route::EmailTemplatePreview,
        "POST",
        "/api/email/template/preview",
        "management",
        key("/api/email/template"),
    ),
    spec(
        Route::EmailTemplateRetrieve,
        "GET",
        "/api/email/template/{emailTemplateId}",
        "management",
        key("/api/email/template"),
    ),
    spec(
        Route::EmailTemplateList,
        "GET",
        "/api/email/template",
        "management",
        key("/api/email/template"),
    ),
    spec(
        Route::EmailTemplateUpdate,
        "PUT",
        "/api/email/template/{emailTemplateId}",
        "management",
        key("/api/email/template"),
    ),
    spec(
        Route::EmailTemplatePatch,
        "PATCH",
        "/api/email/template/{emailTemplateId}",
        "management",
        key("/api/email/template"),
    ),
    spec(
        Route::EmailTemplateDelete,
        "DELETE",
        "/api/email/template/{emailTemplateId}",
        "management",
        key("/api/email/template"),
    ),
    spec(
        Route::EmailTemplateCreate,
        "POST",
        "/api/email/template",
        "management",
        key("/api/email/template"),
    ),
    spec(
        Route::EmailTemplateCreateWithId,
        "POST",
        "/api/email/template/{emailTemplateId}",
        "management",
        key("/api/email/template"),
    ),
    // Before `/api/user/{userId}`: literal segments win by table order.
    spec(
        Route::TwoFactorRecoveryCodes,
        "GET",
        "/api/user/two-factor/recovery-code/{userId}",
        "management",
        key("/api/user/two-factor/recovery-code"),
    ),
    spec(
        Route::TwoFactorRecoveryCodesGenerate,
        "POST",
        "/api/user/two-factor/recovery-code/{userId}",
        "management",
        key("/api/user/two-factor/recovery-code"),
    ),
    spec(
        Route::TwoFactorTrustsEnd,
        "DELETE",
        "/api/user/two-factor/trust/{userId}",
        "management",
        key("/api/user/two-factor/trust"),
    ),
    spec(
        Route::TwoFactorEnable,
        "POST",
        "/api/user/two-factor/{userId}",
        "management",
        key("/api/user/two-factor"),
    ),
    spec(
        Route::TwoFactorDisable,
        "DELETE",
        "/api/user/two-factor/{userId}",
        "management",
        key("/api/user/two-factor"),
    ),
    spec(
        Route::UserVerifyEmail,
        "POST",
        "/api/user/verify-email",
        "management",
        Access::PublicWithKeyForm {
            endpoint: "/api/user/verify-email",
        },
    ),
    spec(
        Route::UserVerifyEmailReissue,
        "PUT",
        "/api/user/verify-email",
        "management",
        key("/api/user/verify-email"),
    ),
    spec(
        Route::UserVerifyRegistration,
        "POST",
        "/api/user/verify-registration",
        "management",
        Access::Public,
    ),
    spec(
        Route::UserVerifyRegistrationReissue,
        "PUT",
        "/api/user/verify-registration",
        "management",
        key("/api/user/verify-registration"),
    ),
    spec(
        Route::UserSearch,
        "POST",
        "/api/user/search",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::UserSearchByQuery,
        "GET",
        "/api/user/search",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::UserReactivate,
        "PUT",
        "/api/user/reactivate/{userId}",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::UserCreate,
        "POST",
        "/api/user",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::UserCreateWithId,
        "POST",
        "/api/user/{userId}",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::UserUpdate,
        "PUT",
        "/api/user/{userId}",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::UserPatch,
        "PATCH",
        "/api/user/{userId}",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::UserDelete,
        "DELETE",
        "/api/user/{userId}",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::UserRetrieve,
        "GET",
        "/api/user/{userId}",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::UserByLoginId,
        "GET",
        "/api/user",
        "management",
        key("/api/user"),
    ),
    spec(
        Route::JwtValidate,
        "GET",
        "/api/jwt/validate",
        "oidc",
        Access::Public,
    ),
    spec(
        Route::RefreshTokenList,
        "GET",
        "/api/jwt/refresh",
        "management",
        key("/api/jwt/refresh"),
    ),
    spec(
        Route::RefreshTokenRetrieve,
        "GET",
        "/api/jwt/refresh/{tokenId}",
        "management",
        key("/api/jwt/refresh"),
    ),
    spec(
        Route::RefreshTokenRevoke,
        "DELETE",
        "/api/jwt/refresh",
        "management",
        key("/api/jwt/refresh"),
    ),
    spec(
        Route::RefreshTokenRevokeById,
        "DELETE",
        "/api/jwt/refresh/{tokenId}",
        "management",
        key("/api/jwt/refresh"),
    ),
    spec(
        Route::JwtPublicKey,
        "GET",
        "/api/jwt/public-key",
        "oidc",
        Access::Public,
    ),
    spec(
        Route::Jwks,
        "GET",
        "/.well-known/jwks.json",
        "management",
        Access::Public,
    ),
    spec(
        Route::TenantJwks,
        "GET",
        "/{tenantId}/.well-known/jwks.json",
        "management",
        Access::Public,
    ),
    spec(
        Route::PasswordlessLinkPage,
        "GET",
        "/oauth2/passwordless/{code}",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::PasswordlessLinkComplete,
        "POST",
        "/oauth2/passwordless/{code}",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::EmailVerifyPage,
        "GET",
        "/email/verify/{verificationId}",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::EmailVerifyComplete,
        "POST",
        "/email/verify/{verificationId}",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::RegistrationVerifyPage,
        "GET",
        "/registration/verify/{verificationId}",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::RegistrationVerifyComplete,
        "POST",
        "/registration/verify/{verificationId}",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::OAuthAuthorize,
        "GET",
        "/oauth2/authorize",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::PasswordlessLinkRequest,
        "POST",
        "/oauth2/passwordless",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::OneTimeCodeComplete,
        "POST",
        "/oauth2/one-time-code",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::TwoFactorComplete,
        "POST",
        "/oauth2/two-factor",
        "oauth2-pages",
        Access::Public,
    ),
    spec(
        Route::OpenIdConfiguration,
        "GET",
        "/.well-known/openid-configuration",
        "oidc",
        Access::Public,
    ),
    spec(
        Route::TenantOpenIdConfiguration,
        "GET",
        "/{tenantId}/.well-known/openid-configuration",
        "oidc",
        Access::Public,
    ),
    spec(
        Route::UserInfo,
        "GET",
        "/oauth2/userinfo",
        "oidc",
        Access::Public,
    ),
    spec(
        Route::Logout,
        "GET",
        "/oauth2/logout",
        "oidc",
        Access::Public,
    ),
    spec(
        Route::Introspect,
        "POST",
        "/oauth2/introspect",
        "oidc",
        Access::Public,
    ),
    spec(
        Route::JwtRefresh,
        "POST",
        "/api/jwt/refresh",
        "oauth2-token",
        Access::Public,
    ),
    spec(
        Route::OAuthToken,
        "POST",
        "/oauth2/token",
        "oauth2-token",
        Access::Public,
    ),
    spec(
        Route::SystemConfigurationRetrieve,
        "GET",
        "/api/system-configuration",
        "management",
        key("/api/system-configuration"),
    ),
    spec(
        Route::SystemConfigurationUpdate,
        "PUT",
        "/api/system-configuration",
        "management",
        key("/api/system-configuration"),
    ),
    spec(
        Route::SystemConfigurationPatch,
        "PATCH",
        "/api/system-configuration",
        "management",
        key("/api/system-configuration"),
    ),
    // Every path's preflight: one small public function answers them all from the system
    // configuration.
    spec(
        Route::CorsPreflight,
        "OPTIONS",
        ANY_PATH,
        "oidc",
        Access::Public,
    ),
];

/// A pattern that matches every path (API Gateway's greedy `{proxy+}`).
pub const ANY_PATH: &str = "/{proxy+}";

/// The routes one entry point serves, known when it is compiled: the local server serves every
/// route, a Lambda function those the table gives it. The dispatcher's arms for other routes
/// are constant-false there, so the optimiser drops them and everything only they reach (the
/// management handlers from the start function, the page templates from the token function):
/// each function's binary links what its own routes use.
pub trait RouteSet: Send + Sync + 'static {
    /// The function's name in the table; `None` for every route.
    const FUNCTION: Option<&'static str>;
    /// Whether any of its routes may send mail (the function is given a mailer).
    const MAILS: bool;
    /// Whether any of its routes signs tokens or opens sealed secrets (it is given a vault).
    const SEALS: bool;
}

/// Every route: the local server, the tests.
pub struct AllRoutes;

impl RouteSet for AllRoutes {
    const FUNCTION: Option<&'static str> = None;
    const MAILS: bool = true;
    const SEALS: bool = true;
}

/// Whether the set named by `function` (`None`: every route) serves `route`; a `const fn`, so
/// that the dispatcher can decide it at compile time.
pub const fn serves(function: Option<&str>, route: Route) -> bool {
    let Some(function) = function else {
        return true;
    };
    let mut i = 0;
    while i < ROUTES.len() {
        let spec = &ROUTES[i];
        if spec.route as usize == route as usize && same_text(spec.function, function) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether the set named by `function` serves any of `routes`.
pub const fn serves_any(function: Option<&str>, routes: &[Route]) -> bool {
    let mut i = 0;
    while i < routes.len() {
        if serves(function, routes[i]) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether the set serves a route that answers with pages (and so its failures with a page).
pub const fn serves_pages(function: Option<&str>) -> bool {
    let mut i = 0;
    while i < ROUTES.len() {
        let spec = &ROUTES[i];
        if spec.route.answers_html() && serves(function, spec.route) {
            return true;
        }
        i += 1;
    }
    false
}

const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Declares the Lambda functions: the name the route table gives each, and what it is wired
/// with. The template's policies grant the same: SES to the functions that mail, KMS to those
/// that seal (`tests/template.rs` holds both to this list).
macro_rules! lambda_functions {
    ($( $(#[$doc:meta])* $name:ident = $function:literal, mails: $mails:literal, seals: $seals:literal; )+) => {
        /// The Lambda functions, one type each, for [`RouteSet`].
        pub mod functions {
            $(
                $(#[$doc])*
                pub struct $name;

                impl super::RouteSet for $name {
                    const FUNCTION: Option<&'static str> = Some($function);
                    const MAILS: bool = $mails;
                    const SEALS: bool = $seals;
                }
            )+

            /// Every function: its name, whether it mails, whether it seals.
            pub const ALL: &[(&str, bool, bool)] = &[$(($function, $mails, $seals)),+];
        }
    };
}

lambda_functions! {
    /// Starts logins: reads the configuration, writes codes. No mail, no keys.
    PasswordlessStart = "passwordless-start", mails: false, seals: false;
    /// Mails a started code.
    PasswordlessSend = "passwordless-send", mails: true, seals: false;
    /// Exchanges codes for tokens; the second step may mail a code.
    PasswordlessLogin = "passwordless-login", mails: true, seals: true;
    /// The hosted pages: they mail links and codes and sign the tokens their grants end in.
    OAuth2Pages = "oauth2-pages", mails: true, seals: true;
    /// The OAuth 2.0 token endpoint.
    OAuth2Token = "oauth2-token", mails: false, seals: true;
    /// Discovery, the JWKS, userinfo, logout, introspection and every preflight.
    Oidc = "oidc", mails: false, seals: true;
    /// The management API.
    Management = "management", mails: true, seals: true;
}

pub struct RouteMatch {
    pub spec: &'static RouteSpec,
    pub params: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RouteMiss {
    NotFound,
    MethodNotAllowed,
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_end_matches('/').split('/').skip(1).collect()
}

fn match_path(pattern: &str, path: &str) -> Option<Vec<String>> {
    if pattern == ANY_PATH {
        return Some(Vec::new());
    }
    let (pattern, path) = (segments(pattern), segments(path));
    if pattern.len() != path.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in pattern.iter().zip(&path) {
        if p.starts_with('{') {
            if s.is_empty() {
                return None;
            }
            params.push((*s).to_owned());
        } else if p != s {
            return None;
        }
    }
    Some(params)
}

/// Finds the route for a request. HEAD is answered as GET.
pub fn match_route(method: &Method, path: &str) -> Result<RouteMatch, RouteMiss> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let mut path_matched = false;
    for spec in ROUTES {
        if let Some(params) = match_path(spec.path, path) {
            if spec.method == method {
                return Ok(RouteMatch { spec, params });
            }
            // Every path has a preflight: that alone does not make a path known.
            path_matched |= spec.path != ANY_PATH;
        }
    }
    Err(if path_matched {
        RouteMiss::MethodNotAllowed
    } else {
        RouteMiss::NotFound
    })
}

/// The paths whose last segment is a secret: a magic link's code, a verification id.
const SECRET_PATHS: &[&str] = &[
    "/oauth2/passwordless/",
    "/api/two-factor/send/",
    "/api/two-factor/status/",
    "/email/verify/",
    "/registration/verify/",
];

/// The path as logged: magic-link and verification paths carry a secret, which never reaches
/// the logs (S12).
pub fn loggable_path(path: &str) -> String {
    match SECRET_PATHS.iter().find(|prefix| path.starts_with(*prefix)) {
        Some(prefix) => format!("{prefix}<code>"),
        None if path.len() > 200 => format!(
            "{}…",
            &path[..path.char_indices().nth(200).map_or(path.len(), |(i, _)| i)]
        ),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_function_serves_exactly_the_routes_the_table_gives_it() {
        for (function, _, _) in functions::ALL {
            for spec in ROUTES {
                assert_eq!(
                    serves(Some(function), spec.route),
                    spec.function == *function,
                    "{function} {:?}",
                    spec.route
                );
                assert!(serves(None, spec.route));
            }
        }
        let named: std::collections::BTreeSet<&str> = ROUTES.iter().map(|s| s.function).collect();
        let declared: std::collections::BTreeSet<&str> =
            functions::ALL.iter().map(|(f, _, _)| *f).collect();
        assert_eq!(named, declared, "one type per function of the table");
    }

    /// What the dispatcher's guards compute at compile time agrees with the table (checked
    /// when this test compiles).
    #[test]
    fn the_compile_time_answer_is_the_tables() {
        const {
            let function = Some("passwordless-start");
            assert!(!serves(function, Route::UserSearch));
            assert!(serves(function, Route::PasswordlessStart));
            assert!(serves_any(
                function,
                &[Route::UserSearch, Route::PasswordlessStart]
            ));
            assert!(!serves_pages(function));
        }
    }

    #[test]
    fn only_the_functions_with_hosted_pages_render_error_pages() {
        let with_pages: Vec<&str> = functions::ALL
            .iter()
            .map(|(f, _, _)| *f)
            .filter(|f| serves_pages(Some(f)))
            .collect();
        assert_eq!(with_pages, ["oauth2-pages", "oidc"]);
        assert!(serves_pages(None));
    }

    #[test]
    fn literal_segments_win_over_parameters_by_table_order() {
        let found = match_route(&Method::POST, "/api/user/registration").unwrap();
        assert_eq!(found.spec.route, Route::UserRegistration);
        let found = match_route(&Method::GET, "/api/user/abc").unwrap();
        assert_eq!(
            (found.spec.route, found.params),
            (Route::UserRetrieve, vec!["abc".to_owned()])
        );
    }

    #[test]
    fn every_path_has_a_preflight_route() {
        for path in ["/api/passwordless/login", "/nope", "/"] {
            let found = match_route(&Method::OPTIONS, path).unwrap();
            assert_eq!(found.spec.route, Route::CorsPreflight, "{path}");
        }
    }

    #[test]
    fn a_known_path_with_another_method_is_not_allowed() {
        assert_eq!(
            match_route(&Method::GET, "/api/passwordless/start").err(),
            Some(RouteMiss::MethodNotAllowed)
        );
        assert_eq!(
            match_route(&Method::GET, "/nope").err(),
            Some(RouteMiss::NotFound)
        );
    }

    #[test]
    fn every_route_is_declared_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{a:?} and {b:?}"
                );
                assert_ne!(a.route, b.route);
            }
        }
    }

    #[test]
    fn s28_only_endpoints_and_methods_the_table_serves_are_permissible() {
        assert!(is_permissible("/api/passwordless/start", "POST"));
        assert!(is_permissible("/api/passwordless/send", "POST"));
        assert!(is_permissible("/api/user", "get"));
        assert!(!is_permissible("/api/passwordless/start", "GET"));
        assert!(!is_permissible("/api/passwordless/login", "POST"));
        assert!(!is_permissible("/api/passwordless/strat", "POST"));
        assert!(!is_permissible("/.well-known/jwks.json", "GET"));
    }

    #[test]
    fn s12_magic_link_codes_never_reach_the_logs() {
        assert_eq!(
            loggable_path("/oauth2/passwordless/SECRETCODE"),
            "/oauth2/passwordless/<code>"
        );
        assert_eq!(
            loggable_path("/email/verify/SECRETID"),
            "/email/verify/<code>"
        );
        assert_eq!(
            loggable_path("/registration/verify/SECRETID"),
            "/registration/verify/<code>"
        );
    }
}
