//! The authorization request as the hosted pages carry it (the authorize page's query, the
//! forms' hidden fields), and the pages that end a dead link or a refused request.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::Look;
use crate::app::App;
use crate::domain::oauth::{AuthorizationError, AuthorizationRequest};
use crate::http::form::FormError;
use crate::http::pages::PageFields;
use crate::http::{HttpRequest, HttpResponse};

/// The authorize page's URL for an authorization request, to ask again from a dead end.
pub(crate) fn authorize_url(authorization: &AuthorizationRequest, locale: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in authorization.parameters() {
        query.append_pair(name, &value);
    }
    if let Some(locale) = locale {
        query.append_pair("locale", locale);
    }
    format!("/oauth2/authorize?{}", query.finish())
}

/// An authorization request's parameters, as the authorize page's query has them and the
/// hosted pages' forms carry them along in hidden fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthorizationFields {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// The authorization request in a decoded query or form, if it holds a valid one. A parameter
/// sent twice makes the request malformed (RFC 6749 section 3.1).
pub(crate) fn authorization_in(
    fields: Result<AuthorizationFields, FormError>,
) -> Result<Option<AuthorizationRequest>, AuthorizationError> {
    let fields = fields.map_err(|error| match error {
        FormError::Repeated(_) => AuthorizationError::Repeated,
        _ => AuthorizationError::Malformed("query"),
    })?;
    AuthorizationRequest::from_parameters(|name| {
        match name {
            "client_id" => &fields.client_id,
            "redirect_uri" => &fields.redirect_uri,
            "response_type" => &fields.response_type,
            "scope" => &fields.scope,
            "state" => &fields.state,
            "nonce" => &fields.nonce,
            "code_challenge" => &fields.code_challenge,
            "code_challenge_method" => &fields.code_challenge_method,
            _ => &None,
        }
        .as_deref()
    })
}

/// One page for every dead link (S10). The default template puts the authorization request in
/// the link's query, so the page can offer to ask again.
pub(crate) fn expired_page(app: &App, request: &HttpRequest) -> HttpResponse {
    let query = PageFields::of_query(request);
    let retry = authorization_in(request.query())
        .ok()
        .flatten()
        .map(|authorization| authorize_url(&authorization, query.locale.as_deref()));
    Look::builtin(app).page(
        request,
        &query,
        StatusCode::NOT_FOUND,
        "expired",
        json!({"retry": retry}),
        Vec::new(),
    )
}

pub(crate) fn error_page(
    app: &App,
    request: &HttpRequest,
    fields: &PageFields,
    reason: &AuthorizationError,
) -> HttpResponse {
    Look::builtin(app).page(
        request,
        fields,
        StatusCode::BAD_REQUEST,
        "error",
        json!({"detail": reason.to_string()}),
        Vec::new(),
    )
}
