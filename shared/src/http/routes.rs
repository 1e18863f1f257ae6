//! The one route table. The local server and every Lambda function dispatch through it.

use super::auth::Access;
use http::Method;
use std::future::Future;
use std::pin::Pin;

use super::errors::ApiError;
use super::{
    api_keys, jwt, keys, management, oauth, oidc, pages, passwordless, system, token, two_factor,
    users, verification, HttpRequest, HttpResponse,
};
use crate::app::App;
use crate::domain::ids::{
    ApiKeyId, ApplicationId, KeyId, RefreshTokenId, RoleId, TemplateId, TenantId, UserId,
};
use crate::domain::validation::FieldError;
use crate::flows::tenancy::TenantScope;
use crate::flows::verification::VerificationKind;
use Access::{Public, PublicWithKeyForm, UnrestrictedKey};

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

const fn key(endpoint: &'static str) -> Access {
    Access::ApiKey { endpoint }
}

/// What a route answers: JSON (`api`) or, for a browser, HTML pages whose failures are pages
/// too (`page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answers {
    Api,
    Page,
}

/// The boxed future of a route's handler.
pub(super) type HandlerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<HttpResponse, ApiError>> + Send + 'a>>;

/// A path parameter as its handler takes it: an id, or the segment itself (a code or a
/// verification id, whose only check is the lookup of its hash).
pub(super) trait PathParameter<'a>: Sized {
    fn from_segment(segment: &'a str) -> Option<Self>;
}

impl<'a> PathParameter<'a> for &'a str {
    fn from_segment(segment: &'a str) -> Option<Self> {
        Some(segment)
    }
}

macro_rules! ids_in_paths {
    ($($id:ty),+) => {$(
        impl PathParameter<'_> for $id {
            fn from_segment(segment: &str) -> Option<Self> {
                <$id>::parse(segment)
            }
        }
    )+};
}

ids_in_paths!(
    TenantId,
    ApplicationId,
    UserId,
    RoleId,
    TemplateId,
    ApiKeyId,
    KeyId,
    RefreshTokenId
);

/// The one rule for a path segment that is not the id the route expects. A write (POST, PUT,
/// PATCH) names the id it makes or changes: a malformed one is the caller's bad input, 400
/// `[invalid]<name>` as for a field of the body. A read or a delete asks for what the id
/// names, which nothing can be: 404, as for any id nobody has.
fn path_parameter<'a, T: PathParameter<'a>>(
    request: &HttpRequest,
    name: &str,
    segment: &'a str,
) -> Result<T, ApiError> {
    T::from_segment(segment).ok_or_else(|| {
        let writes = [Method::POST, Method::PUT, Method::PATCH].contains(&request.method);
        match writes {
            true => {
                let field = camel_case(name);
                let message = format!("[{field}] in the path must be a UUID.");
                ApiError::field(FieldError::invalid(&field, message))
            }
            false => ApiError::NotFound,
        }
    })
}

/// `user_id` → `userId`: the path's own name for a parameter.
fn camel_case(snake: &str) -> String {
    let mut words = snake.split('_');
    let mut name = words.next().unwrap_or_default().to_owned();
    for word in words {
        let mut letters = word.chars();
        name.extend(letters.next().map(|c| c.to_ascii_uppercase()));
        name.push_str(letters.as_str());
    }
    name
}

/// Declares every route in one line: its name, method, path, function, what it answers, who
/// may call it, and its handler with the path's parameters by name. From these lines come the
/// [`Route`] enum, the [`ROUTES`] table, [`Route::answers_html`], the dispatcher
/// ([`handler`]) and `for_each_route!` (which the property tests use, one test per route).
///
/// The dispatcher has one arm per route, guarded by whether the set `S` serves it. The guard is
/// a constant, so a function's binary keeps only its own handlers; an arm only boxes its future
/// (an `.await` in every arm would make each one a state of one coroutine, reachable from its
/// resume whatever the guard says). A route `S` does not serve is not found (the dispatcher
/// answers that before; the arm keeps the match exhaustive).
macro_rules! route_table {
    (
        $d:tt handlers($app:ident, $request:ident, $scope:ident);
        $(
            $(#[$doc:meta])*
            $route:ident: $method:ident $path:literal @ $function:literal, $answers:ident, $access:expr,
                ($($param:ident: $type:ty),*) => $handler:expr;
        )+
    ) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Route {
            $($route),+
        }

        pub const ROUTES: &[RouteSpec] = &[$(
            RouteSpec {
                route: Route::$route,
                method: stringify!($method),
                path: $path,
                function: $function,
                access: $access,
            }
        ),+];

        impl Route {
            /// Whether the route answers a browser with HTML pages: its failures are pages too.
            pub const fn answers_html(self) -> bool {
                match self {
                    $(Route::$route => matches!(route_table!(@answers $answers), Answers::Page)),+
                }
            }
        }

        impl Route {
            /// The names the handler gives the path's parameters, in the path's order.
            pub const fn parameters(self) -> &'static [&'static str] {
                match self {
                    $(Route::$route => &[$(stringify!($param)),*]),+
                }
            }
        }

        /// `for_each_route!(callback)` calls `callback!(Route, …)` with every route's name.
        #[macro_export]
        macro_rules! for_each_route {
            ($d callback:ident) => {
                $d callback!($($route),+);
            };
        }

        /// The handler of `route` for the routes `S` serves, as a boxed future.
        pub(super) fn handler<'a, S: RouteSet>(
            $app: &'a App,
            $request: &'a HttpRequest,
            $scope: TenantScope,
            route: Route,
            params: &'a [String],
        ) -> HandlerFuture<'a> {
            match route {
                $(
                    Route::$route if const { serves(S::FUNCTION, Route::$route) } => {
                        Box::pin(async move {
                            #[allow(unused_mut, unused_variables)]
                            let mut params = params.iter().map(String::as_str);
                            $(
                                let $param: $type = path_parameter(
                                    $request,
                                    stringify!($param),
                                    params.next().unwrap_or_default(),
                                )?;
                            )*
                            $handler
                        })
                    }
                    Route::$route => Box::pin(async { Err(ApiError::NotFound) }),
                )+
            }
        }
    };
    (@answers api) => { Answers::Api };
    (@answers page) => { Answers::Page };
}

route_table! {
    $ handlers(app, request, scope);
    PasswordlessStart: POST "/api/passwordless/start" @ "passwordless-start", api, key("/api/passwordless/start"), () => passwordless::start(app, request, &scope).await;
    PasswordlessSend: POST "/api/passwordless/send" @ "passwordless-send", api, PublicWithKeyForm { endpoint: "/api/passwordless/send" }, () => passwordless::send(app, request, &scope).await;
    PasswordlessLogin: POST "/api/passwordless/login" @ "passwordless-login", api, Public, () => passwordless::login(app, request, &scope).await;
    // A login's second step runs where its first did: the same keys, tables and mailer.
    TwoFactorLogin: POST "/api/two-factor/login" @ "passwordless-login", api, Public, () => two_factor::login(app, request).await;
    TwoFactorSendForLogin: POST "/api/two-factor/send/{twoFactorId}" @ "passwordless-login", api, Public, (two_factor_id: &str) => two_factor::send_for_login(app, request, two_factor_id).await;
    TwoFactorSend: POST "/api/two-factor/send" @ "management", api, key("/api/two-factor/send"), () => two_factor::send(app, request, &scope).await;
    TwoFactorSecret: GET "/api/two-factor/secret" @ "management", api, key("/api/two-factor/secret"), () => two_factor::secret(app, request, &scope).await;
    TwoFactorStatus: GET "/api/two-factor/status/{twoFactorTrustId}" @ "management", api, key("/api/two-factor/status"), (two_factor_trust_id: &str) => two_factor::status_of(app, request, &scope, two_factor_trust_id).await;
    TenantCreate: POST "/api/tenant" @ "management", api, key("/api/tenant"), () => management::create_tenant(app, request, &scope, None).await;
    TenantCreateWithId: POST "/api/tenant/{tenantId}" @ "management", api, key("/api/tenant"), (tenant_id: TenantId) => management::create_tenant(app, request, &scope, Some(tenant_id)).await;
    TenantPatch: PATCH "/api/tenant/{tenantId}" @ "management", api, key("/api/tenant"), (tenant_id: TenantId) => management::patch_tenant(app, request, &scope, tenant_id).await;
    TenantRetrieve: GET "/api/tenant/{tenantId}" @ "management", api, key("/api/tenant"), (tenant_id: TenantId) => management::retrieve_tenant(app, &scope, tenant_id).await;
    TenantList: GET "/api/tenant" @ "management", api, key("/api/tenant"), () => management::list_tenants(app, &scope).await;
    TenantUpdate: PUT "/api/tenant/{tenantId}" @ "management", api, key("/api/tenant"), (tenant_id: TenantId) => management::update_tenant(app, request, &scope, tenant_id).await;
    TenantDelete: DELETE "/api/tenant/{tenantId}" @ "management", api, key("/api/tenant"), (tenant_id: TenantId) => management::delete_tenant(app, &scope, tenant_id).await;
    ApplicationCreate: POST "/api/application" @ "management", api, key("/api/application"), () => management::create_application(app, request, &scope, None).await;
    ApplicationCreateWithId: POST "/api/application/{applicationId}" @ "management", api, key("/api/application"), (application_id: ApplicationId) => management::create_application(app, request, &scope, Some(application_id)).await;
    ApplicationRetrieve: GET "/api/application/{applicationId}" @ "management", api, key("/api/application"), (application_id: ApplicationId) => management::retrieve_application(app, &scope, application_id).await;
    ApplicationList: GET "/api/application" @ "management", api, key("/api/application"), () => management::list_applications(app, request, &scope).await;
    ApplicationUpdate: PUT "/api/application/{applicationId}" @ "management", api, key("/api/application"), (application_id: ApplicationId) => management::update_application(app, request, &scope, application_id, false).await;
    ApplicationPatch: PATCH "/api/application/{applicationId}" @ "management", api, key("/api/application"), (application_id: ApplicationId) => management::update_application(app, request, &scope, application_id, true).await;
    ApplicationDelete: DELETE "/api/application/{applicationId}" @ "management", api, key("/api/application"), (application_id: ApplicationId) => management::delete_application(app, request, &scope, application_id).await;
    ApplicationRoleCreate: POST "/api/application/{applicationId}/role" @ "management", api, key("/api/application"), (application_id: ApplicationId) => management::write_role(app, request, &scope, application_id, None).await;
    ApplicationRoleCreateWithId: POST "/api/application/{applicationId}/role/{roleId}" @ "management", api, key("/api/application"), (application_id: ApplicationId, role_id: RoleId) => management::write_role(app, request, &scope, application_id, Some(role_id)).await;
    ApplicationRoleUpdate: PUT "/api/application/{applicationId}/role/{roleId}" @ "management", api, key("/api/application"), (application_id: ApplicationId, role_id: RoleId) => management::write_role(app, request, &scope, application_id, Some(role_id)).await;
    ApplicationRolePatch: PATCH "/api/application/{applicationId}/role/{roleId}" @ "management", api, key("/api/application"), (application_id: ApplicationId, role_id: RoleId) => management::write_role(app, request, &scope, application_id, Some(role_id)).await;
    ApplicationRoleDelete: DELETE "/api/application/{applicationId}/role/{roleId}" @ "management", api, key("/api/application"), (application_id: ApplicationId, role_id: RoleId) => management::delete_role(app, &scope, application_id, role_id).await;
    UserRegistration: POST "/api/user/registration" @ "management", api, key("/api/user/registration"), () => management::register(app, request, &scope, None).await;
    UserRegistrationWithId: POST "/api/user/registration/{userId}" @ "management", api, key("/api/user/registration"), (user_id: UserId) => management::register(app, request, &scope, Some(user_id)).await;
    RegistrationRetrieve: GET "/api/user/registration/{userId}/{applicationId}" @ "management", api, key("/api/user/registration"), (user_id: UserId, application_id: ApplicationId) => management::retrieve_registration(app, &scope, user_id, application_id).await;
    RegistrationUpdate: PUT "/api/user/registration/{userId}" @ "management", api, key("/api/user/registration"), (user_id: UserId) => management::update_registration(app, request, &scope, user_id, None).await;
    RegistrationPatch: PATCH "/api/user/registration/{userId}" @ "management", api, key("/api/user/registration"), (user_id: UserId) => management::update_registration(app, request, &scope, user_id, None).await;
    RegistrationUpdateForApplication: PUT "/api/user/registration/{userId}/{applicationId}" @ "management", api, key("/api/user/registration"), (user_id: UserId, application_id: ApplicationId) => management::update_registration(app, request, &scope, user_id, Some(application_id)).await;
    RegistrationPatchForApplication: PATCH "/api/user/registration/{userId}/{applicationId}" @ "management", api, key("/api/user/registration"), (user_id: UserId, application_id: ApplicationId) => management::update_registration(app, request, &scope, user_id, Some(application_id)).await;
    RegistrationDelete: DELETE "/api/user/registration/{userId}/{applicationId}" @ "management", api, key("/api/user/registration"), (user_id: UserId, application_id: ApplicationId) => management::delete_registration(app, &scope, user_id, application_id).await;
    ApiKeyCreate: POST "/api/api-key" @ "management", api, UnrestrictedKey, () => api_keys::create_api_key(app, request, None, is_permissible).await;
    ApiKeyCreateWithId: POST "/api/api-key/{keyId}" @ "management", api, UnrestrictedKey, (key_id: ApiKeyId) => api_keys::create_api_key(app, request, Some(key_id), is_permissible).await;
    ApiKeyRetrieve: GET "/api/api-key/{keyId}" @ "management", api, UnrestrictedKey, (key_id: ApiKeyId) => api_keys::retrieve_api_key(app, key_id).await;
    ApiKeyUpdate: PUT "/api/api-key/{keyId}" @ "management", api, UnrestrictedKey, (key_id: ApiKeyId) => api_keys::update_api_key(app, request, key_id, is_permissible).await;
    ApiKeyDelete: DELETE "/api/api-key/{keyId}" @ "management", api, UnrestrictedKey, (key_id: ApiKeyId) => api_keys::delete_api_key(app, key_id).await;
    KeyGenerate: POST "/api/key/generate" @ "management", api, key("/api/key"), () => keys::generate_key(app, request, &scope, None).await;
    KeyGenerateWithId: POST "/api/key/generate/{keyId}" @ "management", api, key("/api/key"), (key_id: KeyId) => keys::generate_key(app, request, &scope, Some(key_id)).await;
    KeyImport: POST "/api/key/import" @ "management", api, key("/api/key"), () => keys::import_key(app, request, &scope, None).await;
    KeyImportWithId: POST "/api/key/import/{keyId}" @ "management", api, key("/api/key"), (key_id: KeyId) => keys::import_key(app, request, &scope, Some(key_id)).await;
    KeyRetrieve: GET "/api/key/{keyId}" @ "management", api, key("/api/key"), (key_id: KeyId) => keys::retrieve_key(app, &scope, key_id).await;
    KeyList: GET "/api/key" @ "management", api, key("/api/key"), () => keys::list_keys(app, &scope).await;
    KeyDelete: DELETE "/api/key/{keyId}" @ "management", api, key("/api/key"), (key_id: KeyId) => keys::delete_key(app, &scope, key_id).await;
    EmailTemplatePreview: POST "/api/email/template/preview" @ "management", api, key("/api/email/template"), () => management::preview_email_template(app, request).await;
    EmailTemplateRetrieve: GET "/api/email/template/{emailTemplateId}" @ "management", api, key("/api/email/template"), (email_template_id: TemplateId) => management::retrieve_email_template(app, &scope, email_template_id).await;
    EmailTemplateList: GET "/api/email/template" @ "management", api, key("/api/email/template"), () => management::list_email_templates(app, &scope).await;
    EmailTemplateUpdate: PUT "/api/email/template/{emailTemplateId}" @ "management", api, key("/api/email/template"), (email_template_id: TemplateId) => management::update_email_template(app, request, &scope, email_template_id, false).await;
    EmailTemplatePatch: PATCH "/api/email/template/{emailTemplateId}" @ "management", api, key("/api/email/template"), (email_template_id: TemplateId) => management::update_email_template(app, request, &scope, email_template_id, true).await;
    EmailTemplateDelete: DELETE "/api/email/template/{emailTemplateId}" @ "management", api, key("/api/email/template"), (email_template_id: TemplateId) => management::delete_email_template(app, &scope, email_template_id).await;
    EmailTemplateCreate: POST "/api/email/template" @ "management", api, key("/api/email/template"), () => management::create_email_template(app, request, &scope, None).await;
    EmailTemplateCreateWithId: POST "/api/email/template/{emailTemplateId}" @ "management", api, key("/api/email/template"), (email_template_id: TemplateId) => management::create_email_template(app, request, &scope, Some(email_template_id)).await;
    // Before `/api/user/{userId}`: literal segments win by table order.
    TwoFactorRecoveryCodes: GET "/api/user/two-factor/recovery-code/{userId}" @ "management", api, key("/api/user/two-factor/recovery-code"), (user_id: UserId) => two_factor::remaining_recovery_codes(app, &scope, user_id).await;
    TwoFactorRecoveryCodesGenerate: POST "/api/user/two-factor/recovery-code/{userId}" @ "management", api, key("/api/user/two-factor/recovery-code"), (user_id: UserId) => two_factor::regenerate_recovery_codes(app, &scope, user_id).await;
    TwoFactorTrustsEnd: DELETE "/api/user/two-factor/trust/{userId}" @ "management", api, key("/api/user/two-factor/trust"), (user_id: UserId) => two_factor::end_trusts(app, &scope, user_id).await;
    TwoFactorEnable: POST "/api/user/two-factor/{userId}" @ "management", api, key("/api/user/two-factor"), (user_id: UserId) => two_factor::enable(app, request, &scope, user_id).await;
    TwoFactorDisable: DELETE "/api/user/two-factor/{userId}" @ "management", api, key("/api/user/two-factor"), (user_id: UserId) => two_factor::disable(app, request, &scope, user_id).await;
    UserVerifyEmail: POST "/api/user/verify-email" @ "management", api, PublicWithKeyForm { endpoint: "/api/user/verify-email" }, () => verification::verify(app, request, &scope, VerificationKind::Email).await;
    UserVerifyEmailReissue: PUT "/api/user/verify-email" @ "management", api, key("/api/user/verify-email"), () => verification::reissue(app, request, &scope, VerificationKind::Email).await;
    UserVerifyRegistration: POST "/api/user/verify-registration" @ "management", api, Public, () => verification::verify(app, request, &scope, VerificationKind::Registration).await;
    UserVerifyRegistrationReissue: PUT "/api/user/verify-registration" @ "management", api, key("/api/user/verify-registration"), () => verification::reissue(app, request, &scope, VerificationKind::Registration).await;
    UserSearch: POST "/api/user/search" @ "management", api, key("/api/user"), () => users::search_users(app, request, &scope).await;
    UserSearchByQuery: GET "/api/user/search" @ "management", api, key("/api/user"), () => users::search_users(app, request, &scope).await;
    UserReactivate: PUT "/api/user/reactivate/{userId}" @ "management", api, key("/api/user"), (user_id: UserId) => users::reactivate_user(app, &scope, user_id).await;
    UserCreate: POST "/api/user" @ "management", api, key("/api/user"), () => users::create_user(app, request, &scope, None).await;
    UserCreateWithId: POST "/api/user/{userId}" @ "management", api, key("/api/user"), (user_id: UserId) => users::create_user(app, request, &scope, Some(user_id)).await;
    UserUpdate: PUT "/api/user/{userId}" @ "management", api, key("/api/user"), (user_id: UserId) => users::update_user(app, request, &scope, user_id, false).await;
    UserPatch: PATCH "/api/user/{userId}" @ "management", api, key("/api/user"), (user_id: UserId) => users::update_user(app, request, &scope, user_id, true).await;
    UserDelete: DELETE "/api/user/{userId}" @ "management", api, key("/api/user"), (user_id: UserId) => users::delete_user(app, request, &scope, user_id).await;
    UserRetrieve: GET "/api/user/{userId}" @ "management", api, key("/api/user"), (user_id: UserId) => users::retrieve_user(app, &scope, user_id).await;
    UserByLoginId: GET "/api/user" @ "management", api, key("/api/user"), () => users::retrieve_user_by_login_id(app, request, &scope).await;
    JwtValidate: GET "/api/jwt/validate" @ "oidc", api, Public, () => jwt::validate(app, request).await;
    RefreshTokenList: GET "/api/jwt/refresh" @ "management", api, key("/api/jwt/refresh"), () => jwt::retrieve_refresh_tokens(app, request, &scope, None).await;
    RefreshTokenRetrieve: GET "/api/jwt/refresh/{tokenId}" @ "management", api, key("/api/jwt/refresh"), (token_id: RefreshTokenId) => jwt::retrieve_refresh_tokens(app, request, &scope, Some(token_id)).await;
    RefreshTokenRevoke: DELETE "/api/jwt/refresh" @ "management", api, key("/api/jwt/refresh"), () => jwt::revoke_refresh_tokens(app, request, &scope, None).await;
    RefreshTokenRevokeById: DELETE "/api/jwt/refresh/{tokenId}" @ "management", api, key("/api/jwt/refresh"), (token_id: RefreshTokenId) => jwt::revoke_refresh_tokens(app, request, &scope, Some(token_id)).await;
    JwtPublicKey: GET "/api/jwt/public-key" @ "oidc", api, Public, () => jwt::public_key(app, request).await;
    Jwks: GET "/.well-known/jwks.json" @ "management", api, Public, () => oidc::jwks(app, None).await;
    TenantJwks: GET "/{tenantId}/.well-known/jwks.json" @ "management", api, Public, (tenant_id: TenantId) => oidc::jwks(app, Some(tenant_id)).await;
    PasswordlessLinkPage: GET "/oauth2/passwordless/{code}" @ "oauth2-pages", page, Public, (code: &str) => oauth::link_page(app, request, code).await;
    PasswordlessLinkComplete: POST "/oauth2/passwordless/{code}" @ "oauth2-pages", page, Public, (code: &str) => oauth::complete_link(app, request, code).await;
    EmailVerifyPage: GET "/email/verify/{verificationId}" @ "oauth2-pages", page, Public, (verification_id: &str) => pages::verify::page(app, request, VerificationKind::Email, verification_id).await;
    EmailVerifyComplete: POST "/email/verify/{verificationId}" @ "oauth2-pages", page, Public, (verification_id: &str) => pages::verify::complete(app, request, VerificationKind::Email, verification_id).await;
    RegistrationVerifyPage: GET "/registration/verify/{verificationId}" @ "oauth2-pages", page, Public, (verification_id: &str) => pages::verify::page(app, request, VerificationKind::Registration, verification_id).await;
    RegistrationVerifyComplete: POST "/registration/verify/{verificationId}" @ "oauth2-pages", page, Public, (verification_id: &str) => pages::verify::complete(app, request, VerificationKind::Registration, verification_id).await;
    OAuthAuthorize: GET "/oauth2/authorize" @ "oauth2-pages", page, Public, () => oauth::authorize(app, request).await;
    OAuthAuthorizePost: POST "/oauth2/authorize" @ "oauth2-pages", page, Public, () => oauth::authorize(app, request).await;
    PasswordlessLinkRequest: POST "/oauth2/passwordless" @ "oauth2-pages", page, Public, () => oauth::request_link(app, request).await;
    OneTimeCodeComplete: POST "/oauth2/one-time-code" @ "oauth2-pages", page, Public, () => oauth::complete_one_time_code(app, request).await;
    TwoFactorComplete: POST "/oauth2/two-factor" @ "oauth2-pages", page, Public, () => pages::two_factor::complete(app, request).await;
    OpenIdConfiguration: GET "/.well-known/openid-configuration" @ "oidc", api, Public, () => oidc::discovery(app, None).await;
    TenantOpenIdConfiguration: GET "/{tenantId}/.well-known/openid-configuration" @ "oidc", api, Public, (tenant_id: TenantId) => oidc::discovery(app, Some(tenant_id)).await;
    UserInfo: GET "/oauth2/userinfo" @ "oidc", api, Public, () => oidc::userinfo(app, request).await;
    UserInfoPost: POST "/oauth2/userinfo" @ "oidc", api, Public, () => oidc::userinfo(app, request).await;
    Logout: GET "/oauth2/logout" @ "oidc", page, Public, () => oidc::logout(app, request).await;
    Introspect: POST "/oauth2/introspect" @ "oidc", api, Public, () => oidc::introspect(app, request).await;
    JwtRefresh: POST "/api/jwt/refresh" @ "oauth2-token", api, Public, () => jwt::refresh(app, request).await;
    LogoutApi: POST "/api/logout" @ "oauth2-token", api, Public, () => jwt::logout(app, request).await;
    OAuthToken: POST "/oauth2/token" @ "oauth2-token", api, Public, () => token::token(app, request).await;
    SystemHealth: GET "/api/health" @ "management", api, Public, () => system::health(app).await;
    SystemStatus: GET "/api/status" @ "management", api, Public, () => system::status(app).await;
    SystemVersion: GET "/api/system/version" @ "management", api, key("/api/system/version"), () => system::version().await;
    SystemConfigurationRetrieve: GET "/api/system-configuration" @ "management", api, key("/api/system-configuration"), () => system::retrieve(app).await;
    SystemConfigurationUpdate: PUT "/api/system-configuration" @ "management", api, key("/api/system-configuration"), () => system::update(app, request, &scope).await;
    SystemConfigurationPatch: PATCH "/api/system-configuration" @ "management", api, key("/api/system-configuration"), () => system::patch(app, request, &scope).await;
    // Every path's preflight: one small public function answers them all from the system
    // configuration.
    CorsPreflight: OPTIONS "/{proxy+}" @ "oidc", api, Public, () => system::preflight(app, request).await;
}

/// A pattern that matches every path (API Gateway's greedy `{proxy+}`).
pub(crate) const ANY_PATH: &str = "/{proxy+}";

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
pub(crate) struct AllRoutes;

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

pub(crate) struct RouteMatch {
    pub spec: &'static RouteSpec,
    pub params: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RouteMiss {
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

/// The methods served at `path` (HEAD wherever GET is), for a 405's `Allow`.
pub(crate) fn allowed_methods(path: &str) -> String {
    let mut methods: Vec<&str> = ROUTES
        .iter()
        .filter(|spec| spec.path != ANY_PATH && match_path(spec.path, path).is_some())
        .map(|spec| spec.method)
        .collect();
    if methods.contains(&"GET") {
        methods.push("HEAD");
    }
    methods.sort_unstable();
    methods.dedup();
    methods.join(", ")
}

/// Finds the route for a request. HEAD is answered as GET.
pub(crate) fn match_route(method: &Method, path: &str) -> Result<RouteMatch, RouteMiss> {
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
pub(crate) fn loggable_path(path: &str) -> String {
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

    /// The table binds a route's path parameters by position; the names it gives them must be
    /// the path's own (`{userId}` is `user_id`), so that a handler never reads one for another.
    #[test]
    fn each_handler_names_the_paths_parameters_in_order() {
        for spec in ROUTES.iter().filter(|s| s.path != ANY_PATH) {
            let in_path: Vec<String> = segments(spec.path)
                .iter()
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(|name| {
                    name.chars()
                        .flat_map(|c| match c.is_ascii_uppercase() {
                            true => vec!['_', c.to_ascii_lowercase()],
                            false => vec![c],
                        })
                        .collect()
                })
                .collect();
            assert_eq!(spec.route.parameters(), in_path, "{spec:?}");
        }
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
