use serde::{Deserialize, Serialize};

use super::kept::Kept;
use serde_json::{Map, Value};

use super::ids::{ApplicationId, RegistrationId, TenantId, UserId};
use super::time::Instant;
use super::two_factor::UserTwoFactor;
use super::validation::{FieldError, ValidationErrors};

pub(crate) use super::validation::MAX_LOGIN_ID_LEN;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Nil in a request that names none: a fresh id is given.
    #[serde(default)]
    pub id: UserId,
    /// Nil in a request that names no tenant.
    #[serde(default)]
    pub tenant_id: TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default)]
    pub preferred_languages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<Instant>,
    #[serde(default)]
    pub insert_instant: Instant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_instant: Option<Instant>,
    #[serde(default)]
    pub last_update_instant: Instant,
    #[serde(default)]
    pub password_change_required: bool,
    #[serde(default)]
    pub registrations: Vec<Registration>,
    /// The second factors a login asks for; changed only through the two-factor API.
    #[serde(default, skip_serializing_if = "UserTwoFactor::is_empty")]
    pub two_factor: UserTwoFactor,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    #[serde(default)]
    pub id: RegistrationId,
    /// Nil in a request that names none (`[missing]registration.applicationId`).
    #[serde(default)]
    pub application_id: ApplicationId,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default)]
    pub preferred_languages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default)]
    pub verified: bool,
    #[serde(default)]
    pub insert_instant: Instant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_instant: Option<Instant>,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

impl User {
    /// FusionAuth's password properties: accepted from clients and dropped, since a
    /// passwordless server keeps no password.
    pub(crate) fn drop_password_properties(&mut self) {
        for name in super::kept::USER_PASSWORD {
            self.kept.remove(*name);
        }
    }
}

impl Registration {
    /// FusionAuth's registration properties kept but not read: known names only.
    pub(crate) fn check_kept(&self, errors: &mut ValidationErrors, path: &str) {
        super::kept::check_kept(errors, path, &self.kept, super::kept::REGISTRATION);
    }
}

/// Why a user who proved control of a code may still not log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginRefusal {
    /// The account is locked or deactivated (423).
    Inactive,
    /// The account's `expiry` has passed (410).
    Expired,
}

/// The kinds of login id a start may look a user up by, tried in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LoginIdType {
    Email,
    Username,
}

impl LoginIdType {
    pub(crate) const DEFAULT_ORDER: [LoginIdType; 2] = [LoginIdType::Email, LoginIdType::Username];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "email" => Some(Self::Email),
            "username" => Some(Self::Username),
            _ => None,
        }
    }
}

/// Emails compare case-insensitively; so do usernames, as in FusionAuth. A login id is
/// otherwise matched as given: `" a@example.com"` is not `a@example.com`, as in FusionAuth.
pub(crate) fn normalize_login_id(login_id: &str) -> String {
    login_id.to_lowercase()
}

impl User {
    pub(crate) fn normalized_email(&self) -> Option<String> {
        self.email.as_deref().map(normalize_login_id)
    }

    pub(crate) fn normalized_username(&self) -> Option<String> {
        self.username.as_deref().map(normalize_login_id)
    }

    pub fn registration(&self, application_id: ApplicationId) -> Option<&Registration> {
        self.registrations
            .iter()
            .find(|r| r.application_id == application_id)
    }

    pub(crate) fn registration_mut(
        &mut self,
        application_id: ApplicationId,
    ) -> Option<&mut Registration> {
        self.registrations
            .iter_mut()
            .find(|r| r.application_id == application_id)
    }

    /// The rule a login checks once the code is proven: inactive users are refused before
    /// expired ones, as FusionAuth orders its 423 and 410.
    pub(crate) fn login_refusal(&self, now: Instant) -> Option<LoginRefusal> {
        if !self.active {
            Some(LoginRefusal::Inactive)
        } else if self.expiry.is_some_and(|expiry| expiry <= now) {
            Some(LoginRefusal::Expired)
        } else {
            None
        }
    }

    /// What a completed login writes: the instant, on the user and on the registration it used,
    /// and the email's verification when the code travelled by email.
    pub(crate) fn record_login(
        &mut self,
        application_id: ApplicationId,
        now: Instant,
        email_proven: bool,
    ) {
        self.last_login_instant = Some(now);
        if email_proven && self.email.is_some() {
            self.verified = true;
        }
        if let Some(registration) = self.registration_mut(application_id) {
            registration.last_login_instant = Some(now);
        }
    }

    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let email = self
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        let username = self
            .username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        if email.is_none() && username.is_none() {
            errors.push(FieldError::new(
                "blank",
                "user.email",
                "You must specify either the [user.email] or [user.username] property.",
            ));
        }
        if let Some(email) = email {
            if email.len() > MAX_LOGIN_ID_LEN || !looks_like_email(email) {
                errors.push(FieldError::invalid(
                    "user.email",
                    "The email address is not valid.",
                ));
            }
        }
        if let Some(username) = username {
            if username.len() > MAX_LOGIN_ID_LEN {
                errors.push(FieldError::new(
                    "tooLong",
                    "user.username",
                    "The username is too long.",
                ));
            }
        }
        for (field, value) in [
            ("user.firstName", &self.first_name),
            ("user.middleName", &self.middle_name),
            ("user.lastName", &self.last_name),
            ("user.fullName", &self.full_name),
            ("user.username", &self.username),
        ] {
            errors.require_single_line(field, value.as_deref());
        }
        let mut seen = std::collections::HashSet::new();
        for registration in &self.registrations {
            if !seen.insert(registration.application_id) {
                errors.push(FieldError::new(
                    "duplicate",
                    "registration.applicationId",
                    "The user is already registered for this application.",
                ));
            }
        }
        super::kept::check_kept(&mut errors, "user", &self.kept, super::kept::USER);
        for registration in &self.registrations {
            registration.check_kept(&mut errors, "user.registrations");
        }
        errors.into_result()
    }
}

impl User {
    /// A new user comes without second factors: a method is enrolled through
    /// `/api/user/two-factor`, which checks a first code and seals the secret (S26).
    pub(crate) fn refuse_two_factor_import(&self) -> Result<(), ValidationErrors> {
        if self.two_factor.is_empty() {
            return Ok(());
        }
        Err(ValidationErrors::field(FieldError::new(
            "notSupported",
            "user.twoFactor.methods",
            "Two-factor methods are enabled through /api/user/two-factor/{userId}, which checks a first code.",
        )))
    }
}

/// Deliberately loose, like FusionAuth: one `@` with text on both sides and a dot in the domain.
pub(crate) fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        serde_json::from_value(serde_json::json!({
            "id": "00000000-0000-4000-8000-000000000001",
            "tenantId": "00000000-0000-4000-8000-000000000002",
            "email": "Jared@PiedPiper.example",
            "registrations": [{"id": "00000000-0000-4000-8000-000000000003",
                               "applicationId": "00000000-0000-4000-8000-000000000004"}]
        }))
        .unwrap()
    }

    #[test]
    fn emails_compare_case_insensitively() {
        assert_eq!(
            user().normalized_email().as_deref(),
            Some("jared@piedpiper.example")
        );
    }

    #[test]
    fn inactive_users_are_refused_before_expired_ones() {
        let now = Instant::from_secs(100);
        let mut u = user();
        assert_eq!(u.login_refusal(now), None);
        u.expiry = Some(Instant::from_secs(100));
        assert_eq!(u.login_refusal(now), Some(LoginRefusal::Expired));
        u.active = false;
        assert_eq!(u.login_refusal(now), Some(LoginRefusal::Inactive));
    }

    #[test]
    fn a_login_by_email_verifies_the_email_and_stamps_the_registration() {
        let mut u = user();
        let app = u.registrations[0].application_id;
        u.record_login(app, Instant::from_secs(5), true);
        assert!(u.verified);
        assert_eq!(u.last_login_instant, Some(Instant::from_secs(5)));
        assert_eq!(
            u.registrations[0].last_login_instant,
            Some(Instant::from_secs(5))
        );
    }

    #[test]
    fn m1_names_with_line_breaks_or_control_characters_are_refused() {
        let mut u = user();
        u.first_name = Some("Eve\r\nBcc: victim@example.com".into());
        u.last_name = Some("Tab\there".into());
        let errors = u.validate().unwrap_err();
        assert!(errors.has_code("[invalid]user.firstName"));
        assert!(errors.has_code("[invalid]user.lastName"));
        u.first_name = Some("Zoë".into());
        u.last_name = Some("Müller-Lüdenscheidt".into());
        assert!(u.validate().is_ok());
    }

    #[test]
    fn a_user_needs_an_email_or_username() {
        let mut u = user();
        u.email = None;
        assert!(u.validate().unwrap_err().has_code("[blank]user.email"));
        u.email = Some("not-an-email".into());
        assert!(u.validate().unwrap_err().has_code("[invalid]user.email"));
        u.email = None;
        u.username = Some("jared".into());
        assert!(u.validate().is_ok());
    }
}
