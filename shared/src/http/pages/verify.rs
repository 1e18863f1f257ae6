//! The hosted pages a verification email links to (`/email/verify/{id}`,
//! `/registration/verify/{id}`, FusionAuth's paths). Opening the link changes nothing: the
//! page's button (a POST with a CSRF token) takes the verification, so a mail scanner that
//! fetches links verifies nobody.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::Secret;
use crate::flows::tenancy::TenantScope;
use crate::flows::verification::{self as flows, VerificationKind};
use crate::flows::FlowError;
use crate::http::errors::ApiError;
use crate::http::pages::link_code;
use crate::http::pages::{self, Csrf, Page, PageFields, PageSet};
use crate::http::{HttpRequest, HttpResponse};

fn render(
    app: &App,
    request: &HttpRequest,
    status: StatusCode,
    name: &'static str,
    context: Value,
    cookies: Vec<String>,
) -> HttpResponse {
    pages::render(
        Page {
            set: PageSet::builtin(),
            status,
            name,
            language: PageFields::of_form_then_query(request).language(request),
            context,
            cookies,
            form_origins: Vec::new(),
        },
        app.entropy.as_ref(),
    )
}

/// The page with the Confirm button (and the code field, once a code turned out to be
/// needed), with a CSRF token for its form.
fn verify_page(
    app: &App,
    request: &HttpRequest,
    kind: VerificationKind,
    id: &Secret,
    status: StatusCode,
    ask_code: bool,
    problem: bool,
) -> Result<HttpResponse, ApiError> {
    let (token, cookie) = Csrf::for_public_url(&app.links.0)
        .token(request, app.entropy.as_ref())
        .ok_or_else(|| ApiError::internal("no randomness for a CSRF token"))?;
    let query = PageFields::of_query(request);
    let language = query.language(request);
    let context = json!({
        "action": format!("/{}/verify/{}", kind.path(), id.expose()),
        "csrf": token,
        "registration": kind == VerificationKind::Registration,
        "ask_code": ask_code,
        "problem": problem.then(|| language.message("verify_code_problem")),
        "locale": query.locale,
    });
    Ok(render(
        app,
        request,
        status,
        "verify",
        context,
        cookie.into_iter().collect(),
    ))
}

fn expired_page(app: &App, request: &HttpRequest) -> HttpResponse {
    render(
        app,
        request,
        StatusCode::NOT_FOUND,
        "verify-expired",
        json!({}),
        Vec::new(),
    )
}

/// `GET`: the page, whatever the id (whether it is live shows only when it is used).
pub async fn page(
    app: &App,
    request: &HttpRequest,
    kind: VerificationKind,
    raw: &str,
) -> Result<HttpResponse, ApiError> {
    let Some(id) = link_code(raw) else {
        return Ok(expired_page(app, request));
    };
    verify_page(app, request, kind, &id, StatusCode::OK, false, false)
}

/// The verify page's form: its CSRF token and, once asked for, the code from the mail. A
/// repeated field leaves the form empty, which the CSRF check refuses.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyForm {
    csrf: Option<String>,
    one_time_code: Option<String>,
}

/// `POST` from the page: takes the verification and says so.
pub async fn complete(
    app: &App,
    request: &HttpRequest,
    kind: VerificationKind,
    raw: &str,
) -> Result<HttpResponse, ApiError> {
    let Some(id) = link_code(raw) else {
        return Ok(expired_page(app, request));
    };
    let form: VerifyForm = request.form().unwrap_or_default();
    let code_field = form
        .one_time_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty() && c.len() <= MAX_SECRET_LEN)
        .map(Secret::new);
    if !Csrf::for_public_url(&app.links.0).holds(request, form.csrf.as_deref()) {
        // A stale or missing cookie: the same page again, with a token that will hold.
        let asked = code_field.is_some();
        return verify_page(app, request, kind, &id, StatusCode::FORBIDDEN, asked, false);
    }
    let verified = flows::verify(
        app.store.as_ref(),
        app.clock.as_ref(),
        &TenantScope::default(),
        kind,
        &id,
        code_field.as_ref(),
    )
    .await;
    match verified {
        Ok(_) => Ok(render(
            app,
            request,
            StatusCode::OK,
            "verified",
            json!({"registration": kind == VerificationKind::Registration}),
            Vec::new(),
        )),
        Err(FlowError::NotFound) => Ok(expired_page(app, request)),
        Err(FlowError::Invalid(errors)) if errors.has_code("[blank]oneTimeCode") => {
            verify_page(app, request, kind, &id, StatusCode::OK, true, false)
        }
        Err(FlowError::Invalid(errors)) if errors.has_code("[invalid]verificationId") => {
            verify_page(app, request, kind, &id, StatusCode::BAD_REQUEST, true, true)
        }
        Err(other) => Err(other.into()),
    }
}
