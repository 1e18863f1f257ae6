//! What a finished login answers over the API, from the passwordless login or its second step:
//! the user and the tokens with FusionAuth's statuses and login cookies, or the 242 of a second
//! step that waits.

use http::StatusCode;

use super::errors::ApiError;
use super::wire::{IssuedTokens, LoginResponse, TwoFactorStartResponse, VerificationIds};
use super::{append_set_cookies, json_response, HttpResponse};
use crate::app::App;
use crate::domain::{Instant, Secret};
use crate::flows::tokens::{LoggedIn, LoginVerification};
use crate::flows::two_factor::PendingTwoFactor;
use crate::flows::verification::{self, VerificationKind};

/// FusionAuth's status for "a second factor is needed".
const TWO_FACTOR_REQUIRED: u16 = 242;

/// The 242 of a login whose second step waits (also the two-factor status API's answer when a
/// login would ask for the second factor).
pub(crate) fn two_factor_required() -> StatusCode {
    status(TWO_FACTOR_REQUIRED)
}

/// One of FusionAuth's own success codes (212, 213), which `http` has no name for.
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
}

/// The 242 a login answers while its second step waits: the step's id and the methods, and
/// nothing of the user or a token.
pub(crate) fn pending_response(pending: &PendingTwoFactor) -> HttpResponse {
    json_response(
        two_factor_required(),
        &TwoFactorStartResponse {
            two_factor_id: pending.id.expose(),
            methods: &pending.methods,
        },
    )
}

/// What a finished login answers, from the passwordless login or its second step: the user,
/// the tokens, the start's `state` and the browser's new trust (a second step's); 202, 213 or
/// 212 where a registration or a verification is missing (with a fresh verification id), and
/// FusionAuth's login cookies.
pub(crate) async fn login_response(
    app: &App,
    done: LoggedIn,
    two_factor_trust: Option<&Secret>,
) -> Result<HttpResponse, ApiError> {
    let pending = match done.verification {
        LoginVerification::RegistrationUnverified => Some(VerificationKind::Registration),
        LoginVerification::EmailUnverified => Some(VerificationKind::Email),
        LoginVerification::NotRegistered | LoginVerification::Verified => None,
    };
    let issued = match pending {
        Some(kind) => Some((
            kind,
            verification::for_unverified_login(
                &app.verification_ports(),
                &done.user,
                done.application_id,
                kind,
            )
            .await?,
        )),
        None => None,
    };
    let mut verifications = VerificationIds::default();
    if let Some((kind, issued)) = &issued {
        // The id only: the one-time code reaches the person by email, never the caller.
        verifications.add(*kind, issued.as_ref(), false);
    }
    let (token, token_expiration_instant) = match (&done.token, done.token_expiration_instant) {
        (Some(token), Some(expiration)) => (Some(token.as_str()), Some(expiration)),
        _ => (None, None),
    };
    let (refresh_token, refresh_token_id) = match (&done.refresh_token, done.refresh_token_id) {
        (Some(refresh), Some(id)) => (Some(refresh.expose()), Some(id)),
        _ => (None, None),
    };
    let body = LoginResponse {
        user: &done.user,
        tokens: IssuedTokens {
            token,
            token_expiration_instant,
            refresh_token,
            refresh_token_id,
        },
        state: done.state.as_ref(),
        verifications,
        two_factor_trust_id: two_factor_trust.map(Secret::expose),
    };
    // FusionAuth's order: not registered, then the registration, then the address unverified;
    // the tokens come with each of them.
    let status = match done.verification {
        LoginVerification::NotRegistered => StatusCode::ACCEPTED,
        LoginVerification::RegistrationUnverified => status(213),
        LoginVerification::EmailUnverified => status(212),
        LoginVerification::Verified => StatusCode::OK,
    };
    let mut response = json_response(status, &body);
    let secure = app.links.0.starts_with("https://");
    append_set_cookies(&mut response, login_cookies(&done, secure, app.clock.now()));
    Ok(response)
}

fn login_cookies(done: &LoggedIn, secure: bool, now: Instant) -> Vec<String> {
    let access = done.token.as_deref().zip(done.token_expiration_instant);
    let refresh = done
        .refresh_token
        .as_ref()
        .map(Secret::expose)
        .zip(done.refresh_token_expiration_instant);
    token_cookies(secure, now, access, refresh)
}

/// FusionAuth's token cookies, for browser callers: `access_token` and `refresh_token`,
/// HttpOnly and SameSite=Strict, Secure when the public URL is https, each living as long as
/// its token. `/api/jwt/refresh` reads the refresh token back from its cookie.
pub(crate) fn token_cookies(
    secure: bool,
    now: Instant,
    access: Option<(&str, Instant)>,
    refresh: Option<(&str, Instant)>,
) -> Vec<String> {
    let cookie = |name: &str, value: &str, until: Instant| {
        let max_age = (until.as_millis() - now.as_millis()).max(0) / 1000;
        token_cookie(name, value, max_age, secure)
    };
    let mut cookies = Vec::new();
    if let Some((token, until)) = access {
        cookies.push(cookie("access_token", token, until));
    }
    if let Some((token, until)) = refresh {
        cookies.push(cookie("refresh_token", token, until));
    }
    cookies
}

/// The token cookies emptied and expired, as a logout sends them.
pub(crate) fn cleared_token_cookies(secure: bool) -> Vec<String> {
    ["access_token", "refresh_token"]
        .into_iter()
        .map(|name| token_cookie(name, "", 0, secure))
        .collect()
}

/// One token cookie: HttpOnly and SameSite=Strict, Secure over https.
fn token_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let mut cookie =
        format!("{name}={value}; Max-Age={max_age}; Path=/; SameSite=Strict; HttpOnly");
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}
