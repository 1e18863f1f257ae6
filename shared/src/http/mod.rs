//! The edge: parsing and validating requests, API-key authentication, FusionAuth error bodies,
//! status mapping and the route table. Lambda functions and the local server both call
//! [`handle`].

pub mod api_keys;
pub mod auth;
pub mod errors;
pub mod json;
pub mod jwt;
pub mod keys;
pub mod management;
pub mod oauth;
pub mod oidc;
mod page_secrets;
pub mod pages;
pub mod pages_two_factor;
pub mod pages_verify;
pub mod passwordless;
pub mod routes;
pub mod system;
pub mod two_factor;
pub mod users;
pub mod verification;

use bytes::Bytes;
use futures_util::FutureExt;
use http::{HeaderMap, Method, StatusCode};
use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use tracing::{error, info, Instrument};

use crate::app::App;
use crate::domain::UserId;
use crate::flows::verification::VerificationKind;
use errors::ApiError;
use routes::{AllRoutes, Route, RouteMatch, RouteSet};

/// Requests with larger bodies are refused before they are parsed (S11).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One HTTP request as every entry point sees it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub source_ip: Option<IpAddr>,
    /// The id that ties the logs of one request together (Lambda's request id, or a fresh one).
    pub request_id: String,
}

impl HttpRequest {
    /// The pairs of the query string, decoded (its length is bounded where requests arrive).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes())
            .into_owned()
            .collect()
    }

    /// The first value of one query parameter.
    pub fn query_value(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }
}

pub type HttpResponse = http::Response<Bytes>;

/// Who is calling: a client over HTTP, or a kickstart file applied by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Client,
    /// Acts as a key with no limits (a kickstart file runs with every right, as FusionAuth's does).
    Kickstart,
}

/// Answers one request from any route of the table.
pub async fn handle(app: &App, request: HttpRequest) -> HttpResponse {
    handle_as::<AllRoutes>(app, request, Caller::Client).await
}

/// Answers one request from the routes of `S` (a Lambda function serves just its own).
pub async fn handle_as<S: RouteSet>(
    app: &App,
    request: HttpRequest,
    caller: Caller,
) -> HttpResponse {
    let span = tracing::info_span!("request", request_id = %request.request_id, method = %request.method, path = %routes::loggable_path(&request.path));
    async move {
        // A panic in one request answers 500 with the request id and leaves the process, its
        // caches and its store connection serving the next request (S25).
        let outcome = AssertUnwindSafe(dispatch::<S>(app, &request, caller))
            .catch_unwind()
            .await;
        let mut response = match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                if let ApiError::Internal(detail) = &e {
                    error!(detail = %detail.chain(), "request failed");
                }
                error_response::<S>(app, &request, e)
            }
            Err(_) => {
                // The panic hook logged where it happened; its message may quote request data.
                error!("request panicked");
                error_response::<S>(app, &request, ApiError::internal("panic"))
            }
        };
        system::decorate(app, &request, &mut response).await;
        strict_transport(app, &mut response);
        info!(status = response.status().as_u16(), "request done");
        response
    }
    .instrument(span)
    .await
}

/// S34: where the public URL is https, every answer tells browsers to come back over https
/// only, for a year. Not `includeSubDomains`: other hosts under the same domain are not ours
/// to pin.
fn strict_transport(app: &App, response: &mut HttpResponse) {
    if app.links.0.starts_with("https://") {
        response.headers_mut().insert(
            http::header::STRICT_TRANSPORT_SECURITY,
            http::HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// The answer to a failed request: FusionAuth's error body, except that a server error on a
/// page a browser shows is a page too, with the request id to quote.
fn error_response<S: RouteSet>(app: &App, request: &HttpRequest, error: ApiError) -> HttpResponse {
    // Decided at compile time for a function without pages: its binary links no page.
    if const { routes::serves_pages(S::FUNCTION) } {
        let on_a_page = routes::match_route(&request.method, &request.path)
            .is_ok_and(|found| found.spec.route.answers_html());
        if on_a_page && matches!(error, ApiError::Internal(_)) {
            return pages::server_error(request, &request.request_id, app.entropy.as_ref());
        }
    }
    error.into_response(&request.request_id)
}

/// The handler of the route, as a boxed future: one arm per route, each guarded by whether `S`
/// serves it. The guard is a constant, so a function's binary keeps only its own handlers; an
/// arm only boxes its future (an `.await` in every arm would make each one a state of this
/// coroutine, reachable from its resume whatever the guard says). A route `S` does not serve
/// is not found (the check before the match answers that first; the arm keeps the match
/// exhaustive).
macro_rules! serve {
    ($set:ty, $route:expr, { $( $($pattern:path)|+ => $handler:expr ),+ $(,)? }) => {
        match $route {
            $(
                $($pattern)|+ if const { routes::serves_any(<$set>::FUNCTION, &[$($pattern),+]) } => {
                    Box::pin(async move { $handler })
                }
                $($pattern)|+ => Box::pin(async { Err(ApiError::NotFound) }),
            )+
        }
    };
}

type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, ApiError>> + Send + 'a>>;

async fn dispatch<S: RouteSet>(
    app: &App,
    request: &HttpRequest,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let RouteMatch { spec, params } = match routes::match_route(&request.method, &request.path) {
        // The matched spec names its function: no need to search the table again.
        Ok(found) if S::FUNCTION.is_none_or(|function| function == found.spec.function) => found,
        Ok(_) | Err(routes::RouteMiss::NotFound) => return Err(ApiError::NotFound),
        Err(routes::RouteMiss::MethodNotAllowed) => return Err(ApiError::MethodNotAllowed),
    };
    if request.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::body_too_large());
    }
    let scope = auth::authorize(app, request, spec, caller).await?;
    let handler: HandlerFuture<'_> = serve!(S, spec.route, {
        Route::PasswordlessStart => passwordless::start(app, request, &scope).await,
        Route::PasswordlessSend => passwordless::send(app, request, &scope).await,
        Route::PasswordlessLogin => passwordless::login(app, request, &scope).await,
        Route::TenantCreate => management::create_tenant(app, request, &scope, None).await,
        Route::TenantCreateWithId => {
            management::create_tenant(app, request, &scope, Some(&params[0])).await
        },
        Route::TenantPatch => management::patch_tenant(app, request, &scope, &params[0]).await,
        Route::TenantRetrieve => management::retrieve_tenant(app, &scope, &params[0]).await,
        Route::TenantList => management::list_tenants(app, &scope).await,
        Route::TenantUpdate => management::update_tenant(app, request, &scope, &params[0]).await,
        Route::TenantDelete => management::delete_tenant(app, &scope, &params[0]).await,
        Route::ApplicationCreate => {
            management::create_application(app, request, &scope, None).await
        },
        Route::ApplicationCreateWithId => {
            management::create_application(app, request, &scope, Some(&params[0])).await
        },
        Route::ApplicationRetrieve => {
            management::retrieve_application(app, &scope, &params[0]).await
        },
        Route::ApplicationList => management::list_applications(app, request, &scope).await,
        Route::ApplicationUpdate => {
            management::update_application(app, request, &scope, &params[0], false).await
        },
        Route::ApplicationPatch => {
            management::update_application(app, request, &scope, &params[0], true).await
        },
        Route::ApplicationDelete => {
            management::delete_application(app, request, &scope, &params[0]).await
        },
        Route::ApplicationRoleCreate => {
            management::write_role(app, request, &scope, &params[0], None).await
        },
        Route::ApplicationRoleCreateWithId
        | Route::ApplicationRoleUpdate
        | Route::ApplicationRolePatch => {
            management::write_role(app, request, &scope, &params[0], Some(&params[1])).await
        },
        Route::ApplicationRoleDelete => {
            management::delete_role(app, &scope, &params[0], &params[1]).await
        },
        Route::UserRegistration => management::register(app, request, &scope, None).await,
        Route::UserRegistrationWithId => {
            management::register(app, request, &scope, Some(&params[0])).await
        },
        Route::EmailTemplateCreate => {
            management::create_email_template(app, request, &scope, None).await
        },
        Route::EmailTemplateCreateWithId => {
            management::create_email_template(app, request, &scope, Some(&params[0])).await
        },
        Route::RegistrationRetrieve => {
            users::retrieve_registration(app, &scope, &params[0], &params[1]).await
        },
        Route::RegistrationUpdate | Route::RegistrationPatch => {
            users::update_registration(app, request, &scope, &params[0], None).await
        },
        Route::RegistrationUpdateForApplication | Route::RegistrationPatchForApplication => {
            users::update_registration(app, request, &scope, &params[0], Some(&params[1])).await
        },
        Route::RegistrationDelete => {
            users::delete_registration(app, &scope, &params[0], &params[1]).await
        },
        Route::ApiKeyCreate => api_keys::create_api_key(app, request, None).await,
        Route::ApiKeyCreateWithId => api_keys::create_api_key(app, request, Some(&params[0])).await,
        Route::ApiKeyRetrieve => api_keys::retrieve_api_key(app, &params[0]).await,
        Route::ApiKeyUpdate => api_keys::update_api_key(app, request, &params[0]).await,
        Route::ApiKeyDelete => api_keys::delete_api_key(app, &params[0]).await,
        Route::EmailTemplateRetrieve => {
            management::retrieve_email_template(app, &scope, &params[0]).await
        },
        Route::EmailTemplateList => management::list_email_templates(app, &scope).await,
        Route::EmailTemplateUpdate => {
            management::update_email_template(app, request, &scope, &params[0], false).await
        },
        Route::EmailTemplatePatch => {
            management::update_email_template(app, request, &scope, &params[0], true).await
        },
        Route::EmailTemplateDelete => {
            management::delete_email_template(app, &scope, &params[0]).await
        },
        Route::EmailTemplatePreview => management::preview_email_template(app, request).await,
        Route::KeyGenerate => keys::generate_key(app, request, &scope, None).await,
        Route::KeyGenerateWithId => {
            keys::generate_key(app, request, &scope, Some(&params[0])).await
        },
        Route::KeyImport => keys::import_key(app, request, &scope, None).await,
        Route::KeyImportWithId => keys::import_key(app, request, &scope, Some(&params[0])).await,
        Route::KeyRetrieve => keys::retrieve_key(app, &scope, &params[0]).await,
        Route::KeyList => keys::list_keys(app, &scope).await,
        Route::KeyDelete => keys::delete_key(app, &scope, &params[0]).await,
        Route::JwtValidate => jwt::validate(app, request).await,
        Route::JwtRefresh => jwt::refresh(app, request).await,
        Route::RefreshTokenList => jwt::retrieve_refresh_tokens(app, request, &scope, None).await,
        Route::RefreshTokenRetrieve => {
            jwt::retrieve_refresh_tokens(app, request, &scope, Some(&params[0])).await
        },
        Route::RefreshTokenRevoke => jwt::revoke_refresh_tokens(app, request, &scope, None).await,
        Route::RefreshTokenRevokeById => {
            jwt::revoke_refresh_tokens(app, request, &scope, Some(&params[0])).await
        },
        Route::JwtPublicKey => jwt::public_key(app, request).await,
        Route::UserRetrieve => users::retrieve_user(app, &scope, &params[0]).await,
        Route::UserByLoginId => users::retrieve_user_by_login_id(app, request, &scope).await,
        Route::UserCreate => users::create_user(app, request, &scope, None).await,
        Route::UserCreateWithId => users::create_user(app, request, &scope, Some(&params[0])).await,
        Route::UserUpdate => users::update_user(app, request, &scope, &params[0], false).await,
        Route::UserPatch => users::update_user(app, request, &scope, &params[0], true).await,
        Route::UserDelete => users::delete_user(app, request, &scope, &params[0]).await,
        Route::UserReactivate => users::reactivate_user(app, &scope, &params[0]).await,
        Route::UserSearch | Route::UserSearchByQuery => {
            users::search_users(app, request, &scope).await
        },
        Route::Jwks => management::jwks(app, None).await,
        Route::TenantJwks => management::jwks(app, Some(&params[0])).await,
        Route::PasswordlessLinkPage => oauth::link_page(app, request, &params[0]).await,
        Route::PasswordlessLinkComplete => oauth::complete_link(app, request, &params[0]).await,
        Route::OAuthToken => oauth::token(app, request).await,
        Route::OAuthAuthorize => oauth::authorize(app, request).await,
        Route::PasswordlessLinkRequest => oauth::request_link(app, request).await,
        Route::OneTimeCodeComplete => oauth::complete_one_time_code(app, request).await,
        Route::OpenIdConfiguration => oidc::discovery(app, None).await,
        Route::TenantOpenIdConfiguration => oidc::discovery(app, Some(&params[0])).await,
        Route::UserInfo => oidc::userinfo(app, request).await,
        Route::Logout => oidc::logout(app, request).await,
        Route::Introspect => oidc::introspect(app, request).await,
        Route::SystemConfigurationRetrieve => system::retrieve(app).await,
        Route::SystemConfigurationUpdate => system::update(app, request, &scope).await,
        Route::SystemConfigurationPatch => system::patch(app, request, &scope).await,
        Route::CorsPreflight => system::preflight(app, request).await,
        Route::UserVerifyEmail => {
            verification::verify(app, request, &scope, VerificationKind::Email).await
        },
        Route::UserVerifyEmailReissue => {
            verification::reissue(app, request, &scope, VerificationKind::Email).await
        },
        Route::UserVerifyRegistration => {
            verification::verify(app, request, &scope, VerificationKind::Registration).await
        },
        Route::UserVerifyRegistrationReissue => {
            verification::reissue(app, request, &scope, VerificationKind::Registration).await
        },
        Route::TwoFactorComplete => pages_two_factor::complete(app, request).await,
        Route::TwoFactorSecret => two_factor::secret(app, request, &scope).await,
        Route::TwoFactorEnable => {
            let user = management::path_id(&params[0], "userId", UserId::parse)?;
            two_factor::enable(app, request, &scope, user).await
        },
        Route::TwoFactorDisable => {
            let user = management::path_id(&params[0], "userId", UserId::parse)?;
            two_factor::disable(app, request, &scope, user).await
        },
        Route::TwoFactorSend => two_factor::send(app, request, &scope).await,
        Route::TwoFactorSendForLogin => two_factor::send_for_login(app, request, &params[0]).await,
        Route::TwoFactorLogin => two_factor::login(app, request).await,
        Route::TwoFactorStatus => two_factor::status_of(app, request, &scope, &params[0]).await,
        Route::TwoFactorRecoveryCodes => {
            let user = management::path_id(&params[0], "userId", UserId::parse)?;
            two_factor::remaining_recovery_codes(app, &scope, user).await
        },
        Route::TwoFactorTrustsEnd => {
            let user = management::path_id(&params[0], "userId", UserId::parse)?;
            two_factor::end_trusts(app, &scope, user).await
        },
        Route::TwoFactorRecoveryCodesGenerate => {
            let user = management::path_id(&params[0], "userId", UserId::parse)?;
            two_factor::regenerate_recovery_codes(app, &scope, user).await
        },
        Route::EmailVerifyPage => {
            pages_verify::page(app, request, VerificationKind::Email, &params[0]).await
        },
        Route::EmailVerifyComplete => {
            pages_verify::complete(app, request, VerificationKind::Email, &params[0]).await
        },
        Route::RegistrationVerifyPage => {
            pages_verify::page(app, request, VerificationKind::Registration, &params[0]).await
        },
        Route::RegistrationVerifyComplete => {
            pages_verify::complete(app, request, VerificationKind::Registration, &params[0]).await
        },
    });
    handler.await
}

/// A JSON response with FusionAuth's content type.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

pub fn empty_response(status: StatusCode) -> HttpResponse {
    let mut response = http::Response::new(Bytes::new());
    *response.status_mut() = status;
    response
}

#[cfg(feature = "lambda")]
pub mod lambda;
