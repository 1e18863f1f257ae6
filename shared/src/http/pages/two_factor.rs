//! The hosted second step: after the magic link (or the typed short code) a user with a
//! second factor sees this page; its form posts the code to `/oauth2/two-factor`, which
//! finishes the authorization-code redirect, and may ask to trust the browser (FusionAuth's
//! `fusionauth.trust` cookie, `__Host-` prefixed over https). A user with an email method can
//! have a code mailed instead. Where the policy is `Required` and the user has no method yet,
//! the page enrols an authenticator app first and shows the recovery codes once.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::two_factor::ChallengePurpose;
use crate::domain::two_factor::{
    otpauth_uri, AuthenticatorSecret, TwoFactorMethod, TwoFactorMethodKind,
};
use crate::domain::{Secret, Tenant, User};
use crate::flows::oauth::SecondStepAhead;
use crate::flows::oauth::{redirect_to_client, Completion};
use crate::flows::tenancy::TenantScope;
use crate::flows::two_factor::{self as flows, EnableRequest, SecondFactorLogin};
use crate::flows::FlowError;
use crate::http::errors::ApiError;
use crate::http::pages::authorization::expired_page;
use crate::http::pages::{self, Csrf, PageFields};
use crate::http::pages::{completion_ports, csrf_token, Look};
use crate::http::{HttpRequest, HttpResponse};

/// `jared@example.com` as `j•••@example.com`: enough to tell addresses apart on a page.
fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "•••".into(),
    }
}

/// What the page shows besides the step's id.
#[derive(Default)]
struct Shown<'a> {
    methods: &'a [TwoFactorMethod],
    /// An authenticator to enrol: its secret (base32) and `otpauth://` URI.
    enrol: Option<(String, String)>,
    /// Just enrolled: the recovery codes, and the code that finishes the step.
    recovery: Option<(Vec<String>, String)>,
    problem: Option<&'static str>,
    sent: bool,
}

fn step_page(
    look: &Look,
    request: &HttpRequest,
    fields: &PageFields,
    status: StatusCode,
    (two_factor_id, tenant): (&str, Option<&Tenant>),
    shown: Shown<'_>,
) -> Result<HttpResponse, ApiError> {
    let (token, csrf_cookie) = csrf_token(look.app, request)?;
    let language = fields.language(request);
    let email_methods: Vec<Value> = shown
        .methods
        .iter()
        .filter(|m| m.method == TwoFactorMethodKind::Email)
        .filter_map(|m| {
            m.email
                .as_deref()
                .map(|address| json!({"id": m.id, "address": masked(address)}))
        })
        .collect();
    let trust_seconds = tenant.map_or(2_592_000, |t| {
        t.external_identifier_configuration
            .two_factor_trust_id_time_to_live_in_seconds
    });
    let (recovery_codes, finishing_code) = shown.recovery.unzip();
    let context = json!({
        "csrf": token,
        "locale": fields.locale,
        "two_factor_id": two_factor_id,
        "email_methods": email_methods,
        "trust_days": (trust_seconds / 86_400).max(1).to_string(),
        "problem": shown.problem.map(|key| language.message(key)),
        "sent": shown.sent,
        "enrol": shown.enrol.map(|(secret, uri)| json!({"secret": secret, "uri": uri})),
        "recovery_codes": recovery_codes,
        "finishing_code": finishing_code,
    });
    Ok(look.page(
        request,
        fields,
        status,
        "two-factor",
        context,
        csrf_cookie.into_iter().collect(),
    ))
}

/// A fresh authenticator to enrol, shown as its key and the URI an app reads.
fn new_enrolment(
    app: &App,
    tenant: Option<&Tenant>,
    user: &User,
) -> Result<(String, String), ApiError> {
    let secret = AuthenticatorSecret::generate(app.entropy.as_ref()).map_err(FlowError::from)?;
    Ok(enrolment_of(&secret, tenant, user))
}

fn enrolment_of(
    secret: &AuthenticatorSecret,
    tenant: Option<&Tenant>,
    user: &User,
) -> (String, String) {
    let issuer = tenant.map_or("Passwordless", |t| t.name.as_str());
    let account = user.email.as_deref().or(user.username.as_deref());
    (secret.to_base32(), otpauth_uri(secret, issuer, account))
}

/// The page a hosted login lands on when its user's second factor is asked for.
pub(crate) async fn first_page(
    app: &App,
    request: &HttpRequest,
    fields: &PageFields,
    ahead: &SecondStepAhead,
) -> Result<HttpResponse, ApiError> {
    let pending = &ahead.pending;
    let tenant = app
        .store
        .tenant(ahead.tenant_id)
        .await
        .map_err(FlowError::from)?;
    let look = Look::of(app, tenant.as_ref()).posting_to([&ahead.redirect_uri]);
    let enrol = match pending.methods.is_empty() {
        false => None,
        true => {
            match flows::pending_step(app.store.as_ref(), app.clock.as_ref(), &pending.id).await? {
                Some((_, user)) => Some(new_enrolment(app, tenant.as_ref(), &user)?),
                None => return Ok(expired_page(app, request)),
            }
        }
    };
    step_page(
        &look,
        request,
        fields,
        StatusCode::OK,
        (pending.id.expose(), tenant.as_ref()),
        Shown {
            methods: &pending.methods,
            enrol,
            ..Shown::default()
        },
    )
}

/// The second step's form. A repeated field leaves the form empty, which ends at the expired
/// page (no step id).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepForm {
    two_factor_id: Option<String>,
    csrf: Option<String>,
    /// `email` asks for a code by mail, to the method `method_id`.
    send: Option<String>,
    method_id: Option<String>,
    code: Option<String>,
    /// The authenticator being enrolled (base32), while the user has no method yet.
    enrol_secret: Option<String>,
    trust_computer: Option<String>,
}

/// A pending second step as the page shows it: whose it is, in which look, and the
/// authenticator being enrolled if any.
struct Step<'a> {
    id: Secret,
    look: Look<'a>,
    fields: PageFields,
    tenant: Option<Tenant>,
    user: User,
    enrolling: Option<AuthenticatorSecret>,
}

impl Step<'_> {
    fn page(
        &self,
        request: &HttpRequest,
        status: StatusCode,
        shown: Shown<'_>,
    ) -> Result<HttpResponse, ApiError> {
        step_page(
            &self.look,
            request,
            &self.fields,
            status,
            (self.id.expose(), self.tenant.as_ref()),
            shown,
        )
    }

    /// The page again, with the form's enrolment (if any) still on it.
    fn again(
        &self,
        request: &HttpRequest,
        status: StatusCode,
        problem: Option<&'static str>,
        sent: bool,
    ) -> Result<HttpResponse, ApiError> {
        self.page(
            request,
            status,
            Shown {
                methods: &self.user.two_factor.methods,
                enrol: self
                    .enrolling
                    .as_ref()
                    .map(|secret| enrolment_of(secret, self.tenant.as_ref(), &self.user)),
                problem,
                sent,
                ..Shown::default()
            },
        )
    }
}

/// `POST /oauth2/two-factor`: the code (or a request for an emailed one, or a first code of an
/// authenticator being enrolled) for a pending step.
pub async fn complete(app: &App, request: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let form: StepForm = request.form().unwrap_or_default();
    let Some(id) = form
        .two_factor_id
        .as_deref()
        .filter(|id| id.len() <= MAX_SECRET_LEN)
        .map(Secret::new)
    else {
        return Ok(expired_page(app, request));
    };
    let Some((pending, user)) =
        flows::pending_step(app.store.as_ref(), app.clock.as_ref(), &id).await?
    else {
        return Ok(expired_page(app, request));
    };
    let tenant = app
        .store
        .tenant(pending.tenant_id)
        .await
        .map_err(FlowError::from)?;
    let redirect_uri = match &pending.purpose {
        ChallengePurpose::Login {
            authorization: Some(authorization),
            ..
        } => Some(authorization.redirect_uri.clone()),
        _ => None,
    };
    let enrolling = form
        .enrol_secret
        .as_deref()
        .filter(|_| user.two_factor.methods.is_empty())
        .and_then(AuthenticatorSecret::from_base32);
    let step = Step {
        id,
        look: Look::of(app, tenant.as_ref()).posting_to(redirect_uri.as_ref()),
        fields: PageFields::of_form(request),
        tenant,
        user,
        enrolling,
    };
    if !Csrf::for_public_url(&app.links.0).holds(request, form.csrf.as_deref()) {
        return step.again(request, StatusCode::FORBIDDEN, None, false);
    }
    if form.send.as_deref() == Some("email") {
        let method_id = form.method_id.as_deref().unwrap_or_default();
        return send_email_code(app, request, &step, method_id).await;
    }
    let Some(code) = form
        .code
        .as_deref()
        .map(|c| c.trim().replace(' ', ""))
        .filter(|c| !c.is_empty() && c.len() <= MAX_SECRET_LEN)
        .map(Secret::new)
    else {
        return step.again(
            request,
            StatusCode::BAD_REQUEST,
            Some("two_factor_problem"),
            false,
        );
    };
    if let Some(secret) = &step.enrolling {
        return finish_enrolment(app, request, &step, secret, code).await;
    }
    let trust_computer = form.trust_computer.as_deref() == Some("true");
    finish_login(app, request, &step, code, trust_computer).await
}

/// A code by mail to one of the user's email methods; the page says it was sent.
async fn send_email_code(
    app: &App,
    request: &HttpRequest,
    step: &Step<'_>,
    method_id: &str,
) -> Result<HttpResponse, ApiError> {
    match flows::send_login_code(&app.two_factor_ports(), &step.id, method_id).await {
        Ok(()) => step.again(request, StatusCode::OK, None, true),
        Err(FlowError::RateLimited) => step.again(
            request,
            StatusCode::TOO_MANY_REQUESTS,
            Some("limited_text"),
            false,
        ),
        Err(FlowError::NotFound) => Ok(expired_page(app, request)),
        Err(FlowError::Invalid(_)) => step.again(
            request,
            StatusCode::BAD_REQUEST,
            Some("two_factor_problem"),
            false,
        ),
        Err(other) => Err(other.into()),
    }
}

/// The first code of an authenticator being enrolled: the method is enabled and the page
/// shows the recovery codes once, with the code that finishes the step.
async fn finish_enrolment(
    app: &App,
    request: &HttpRequest,
    step: &Step<'_>,
    secret: &AuthenticatorSecret,
    code: Secret,
) -> Result<HttpResponse, ApiError> {
    // The person proved the first factor; the pending step stands for the API key the enable
    // API asks for, and makes the code that finishes it.
    let enabled = flows::enable(
        &app.two_factor_ports(),
        &TenantScope::default(),
        step.user.id,
        EnableRequest {
            method: TwoFactorMethodKind::Authenticator,
            code,
            secret: Some(secret.clone()),
            email: None,
            two_factor_id: Some(step.id.clone()),
        },
    )
    .await;
    match enabled {
        Ok(enabled) => step.page(
            request,
            StatusCode::OK,
            Shown {
                recovery: Some((
                    enabled
                        .recovery_codes
                        .iter()
                        .map(|c| c.expose().to_owned())
                        .collect(),
                    enabled
                        .code
                        .as_ref()
                        .map(|c| c.expose().to_owned())
                        .unwrap_or_default(),
                )),
                ..Shown::default()
            },
        ),
        Err(FlowError::TwoFactorCodeWrong | FlowError::Invalid(_)) => step.again(
            request,
            StatusCode::BAD_REQUEST,
            Some("two_factor_problem"),
            false,
        ),
        Err(FlowError::NotFound) => Ok(expired_page(app, request)),
        Err(other) => Err(other.into()),
    }
}

/// The code of the second factor: the login completes and the browser goes on to the client
/// with an authorization code, trusted for the tenant's time if it asked.
async fn finish_login(
    app: &App,
    request: &HttpRequest,
    step: &Step<'_>,
    code: Secret,
    trust_computer: bool,
) -> Result<HttpResponse, ApiError> {
    let done = match flows::login(
        &app.two_factor_ports(),
        SecondFactorLogin {
            two_factor_id: step.id.clone(),
            code,
            trust_computer,
            application_id: None,
            ip_address: request.source_ip.map(|ip| ip.to_string()),
            no_jwt: true,
        },
    )
    .await
    {
        Ok(done) => done,
        Err(FlowError::TwoFactorCodeWrong) => {
            return step.again(
                request,
                StatusCode::BAD_REQUEST,
                Some("two_factor_problem"),
                false,
            )
        }
        Err(FlowError::NotFound | FlowError::UserLocked | FlowError::UserExpired) => {
            return Ok(expired_page(app, request))
        }
        Err(other) => return Err(other.into()),
    };
    let (Some(authorization), Some(application)) = (
        done.authorization,
        app.store
            .application(done.logged_in.application_id)
            .await
            .map_err(FlowError::from)?,
    ) else {
        // A step begun by the API has no authorization request to finish here.
        return Ok(expired_page(app, request));
    };
    let completion = redirect_to_client(
        &completion_ports(app),
        &application,
        &done.logged_in.user,
        done.logged_in.registered,
        authorization,
        step.fields.locale.clone(),
    )
    .await?;
    let Completion::Redirect(location) = completion else {
        return Ok(expired_page(app, request));
    };
    let mut response = pages::redirect(&location);
    if let (Some(trust), Some(until)) = (&done.trust, done.trust_expires_at) {
        let cookie = crate::http::pages::trust_set_cookie(app, trust, until, app.clock.now());
        crate::http::append_set_cookies(&mut response, [cookie]);
    }
    Ok(response)
}
