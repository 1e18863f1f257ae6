//! `/api/user…`: create, retrieve (by id, email, username or login id), replace, patch,
//! deactivate, reactivate, delete and search users.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::errors::ApiError;
use super::json::{decode_body, Checks};
use super::management::{patch_object, patched, required_object, DeleteQuery, UpdateQuery};
use super::wire::{SearchResponse, UserResponse, VerificationIds};
use super::{empty_response, json_response, HttpRequest, HttpResponse};
use crate::app::App;
use crate::domain::user::{LoginIdType, MAX_LOGIN_ID_LEN};
use crate::domain::validation::FieldError;
use crate::domain::{ApplicationId, User, UserId};
use crate::flows::tenancy::TenantScope;
use crate::flows::users::{self as flows, UserSearch, DEFAULT_SEARCH_RESULTS, MAX_SEARCH_RESULTS};
use crate::flows::verification::VerificationKind;

/// FusionAuth's `UserRequest`. The password properties are accepted and dropped: a
/// passwordless server keeps no password.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)]
struct UserBody {
    user: Option<User>,
    application_id: Option<ApplicationId>,
    current_password: Option<String>,
    disable_domain_block: Option<bool>,
    password_field_type: Option<String>,
    send_set_password_email: Option<bool>,
    send_set_password_identity_type: Option<String>,
    skip_verification: Option<bool>,
    verification_ids: Option<Vec<String>>,
    event_info: Option<Map<String, Value>>,
}

fn user_response(user: &User) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &UserResponse {
            user,
            verifications: VerificationIds::default(),
        },
    )
}

/// `POST /api/user[/{id}]`.
pub async fn create_user(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: Option<UserId>,
) -> Result<HttpResponse, ApiError> {
    let body: UserBody = decode_body(&request.body)?;
    let user = required_object("user", body.user)?;
    let (user, verification) = flows::create_user(
        &app.verification_ports(),
        scope,
        id,
        user,
        body.skip_verification.unwrap_or(false),
    )
    .await?;
    // The caller holds a key that may create users: it sees the one-time code too.
    let mut verifications = VerificationIds::default();
    verifications.add(VerificationKind::Email, verification.as_ref(), true);
    Ok(json_response(
        StatusCode::OK,
        &UserResponse {
            user: &user,
            verifications,
        },
    ))
}

pub(crate) async fn retrieve_user(
    app: &App,
    scope: &TenantScope,
    id: UserId,
) -> Result<HttpResponse, ApiError> {
    // An id that is not a UUID names no user: 404, like any unknown id.
    let user = flows::user(app.store.as_ref(), scope, id).await?;
    Ok(user_response(&user))
}

/// `PUT` (the whole user) and `PATCH` (merged into the stored one). FusionAuth's client
/// reactivates with `PUT /api/user/{id}?reactivate=true` and no body.
pub async fn update_user(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: UserId,
    merge_patch: bool,
) -> Result<HttpResponse, ApiError> {
    if !merge_patch
        && request.query::<UpdateQuery>()?.reactivate
        && request.body.iter().all(u8::is_ascii_whitespace)
    {
        return reactivate_user(app, scope, id).await;
    }
    let store = app.store.as_ref();
    let user = if merge_patch {
        let patch = patch_object(&request.body, "user")?;
        let current = flows::user(store, scope, id).await?;
        patched(&current, patch, "user")?
    } else {
        let body: UserBody = decode_body(&request.body)?;
        required_object("user", body.user)?
    };
    let user = flows::update_user(&app.verification_ports(), scope, id, user).await?;
    Ok(user_response(&user))
}

/// `DELETE`: deactivates, or with `hardDelete=true` deletes.
pub async fn delete_user(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
    id: UserId,
) -> Result<HttpResponse, ApiError> {
    let DeleteQuery { hard_delete: hard } = request.query()?;
    flows::delete_user(app.store.as_ref(), app.clock.as_ref(), scope, id, hard).await?;
    Ok(empty_response(StatusCode::OK))
}

pub(crate) async fn reactivate_user(
    app: &App,
    scope: &TenantScope,
    id: UserId,
) -> Result<HttpResponse, ApiError> {
    let user = flows::reactivate_user(app.store.as_ref(), app.clock.as_ref(), scope, id).await?;
    Ok(user_response(&user))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginIdQuery {
    email: Option<String>,
    username: Option<String>,
    login_id: Option<String>,
    /// Each value a comma-separated list; the parameter may repeat.
    #[serde(default)]
    login_id_types: Vec<String>,
}

/// `GET /api/user?email=…`, `?username=…` (usernames only) or `?loginId=…` (the kinds
/// `loginIdTypes` names, email then username by default).
pub(crate) async fn retrieve_user_by_login_id(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let query: LoginIdQuery = request.query()?;
    let (login_id, kinds) = if let Some(email) = query.email {
        (email, vec![LoginIdType::Email])
    } else if let Some(username) = query.username {
        (username, vec![LoginIdType::Username])
    } else if let Some(login_id) = query.login_id {
        let kinds: Vec<LoginIdType> = query
            .login_id_types
            .iter()
            .flat_map(|types| types.split(','))
            .map(|name| {
                LoginIdType::parse(name.trim()).ok_or_else(|| {
                    ApiError::field(FieldError::invalid(
                        "loginIdTypes",
                        "[loginIdTypes] may contain only email and username.",
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        match kinds.is_empty() {
            true => (login_id, LoginIdType::DEFAULT_ORDER.to_vec()),
            false => (login_id, kinds),
        }
    } else {
        return Err(ApiError::field(FieldError::missing("email")));
    };
    if login_id.len() > MAX_LOGIN_ID_LEN {
        return Err(ApiError::NotFound);
    }
    let user = flows::user_by_login_id(app.store.as_ref(), scope, &login_id, &kinds).await?;
    Ok(user_response(&user))
}

/// FusionAuth's `SearchRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SearchBody {
    search: Option<SearchCriteria>,
    expand: Option<Vec<String>>,
}

/// FusionAuth's `UserSearchCriteria`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // accurateTotal: every total here is accurate
struct SearchCriteria {
    query_string: Option<String>,
    ids: Option<Vec<UserId>>,
    number_of_results: Option<usize>,
    start_row: Option<usize>,
    accurate_total: Option<bool>,
    order_by: Option<String>,
    sort_fields: Option<Vec<Value>>,
    query: Option<Value>,
    next_results: Option<String>,
}

/// `POST /api/user/search` and `GET /api/user/search?queryString=…&ids=…`.
pub(crate) async fn search_users(
    app: &App,
    request: &HttpRequest,
    scope: &TenantScope,
) -> Result<HttpResponse, ApiError> {
    let criteria = if request.method == http::Method::POST {
        let body: SearchBody = decode_body(&request.body)?;
        if body.expand.is_some_and(|e| !e.is_empty()) {
            return Err(not_supported("expand", "a search answers whole users."));
        }
        required_object("search", body.search)?
    } else {
        request.query::<SearchQuery>()?.into_criteria()?
    };
    if criteria.query.is_some() {
        return Err(not_supported(
            "search.query",
            "searches take a queryString of prefixes, not an Elasticsearch query.",
        ));
    }
    if criteria.next_results.is_some() {
        return Err(not_supported(
            "search.nextResults",
            "pages are chosen with startRow.",
        ));
    }
    if criteria.sort_fields.is_some_and(|s| !s.is_empty()) || criteria.order_by.is_some() {
        return Err(not_supported(
            "search.sortFields",
            "results come ordered by email, then username.",
        ));
    }
    let mut checks = Checks::new();
    let query_string = checks.optional_text("search.queryString", criteria.query_string, 1024);
    let number_of_results = criteria.number_of_results.unwrap_or(DEFAULT_SEARCH_RESULTS);
    if number_of_results > MAX_SEARCH_RESULTS {
        checks.push(FieldError::invalid(
            "search.numberOfResults",
            format!("[search.numberOfResults] may be at most {MAX_SEARCH_RESULTS}."),
        ));
    }
    checks.finish()?;
    let search = UserSearch {
        query_string,
        ids: criteria.ids,
        start_row: criteria.start_row.unwrap_or(0),
        number_of_results,
    };
    let found = flows::search_users(app.store.as_ref(), scope, &search).await?;
    Ok(json_response(
        StatusCode::OK,
        &SearchResponse {
            total: found.total,
            users: &found.users,
        },
    ))
}

/// A search in the query string (`GET /api/user/search`), FusionAuth's criteria by name.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SearchQuery {
    query_string: Option<String>,
    #[serde(default)]
    ids: Vec<String>,
    number_of_results: Option<usize>,
    start_row: Option<usize>,
    accurate_total: Option<bool>,
    query: Option<String>,
    sort_fields: Option<String>,
    order_by: Option<String>,
    next_results: Option<String>,
}

impl SearchQuery {
    fn into_criteria(self) -> Result<SearchCriteria, ApiError> {
        let ids = self
            .ids
            .iter()
            .map(|id| {
                UserId::parse(id).ok_or_else(|| {
                    ApiError::field(FieldError::invalid("ids", "[ids] must be user ids."))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SearchCriteria {
            query_string: self.query_string,
            ids: (!ids.is_empty()).then_some(ids),
            number_of_results: self.number_of_results,
            start_row: self.start_row,
            accurate_total: self.accurate_total,
            query: self.query.map(Value::String),
            order_by: self.order_by.or(self.sort_fields),
            next_results: self.next_results,
            sort_fields: None,
        })
    }
}

fn not_supported(field: &str, why: &str) -> ApiError {
    ApiError::field(FieldError::new(
        "notSupported",
        field,
        format!("[{field}] is not supported by this server: {why}"),
    ))
}
