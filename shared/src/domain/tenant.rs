use serde::{Deserialize, Serialize};

use super::kept::Kept;

use super::generator::CodeGenerator;
use super::ids::{KeyId, TemplateId, TenantId};
use super::signing::SigningAlgorithm;
use super::time::Instant;
use super::two_factor::TenantMultiFactorConfiguration;
use super::validation::{FieldError, ValidationErrors};
use super::verification::VerificationStrategy;

/// The text at `path` inside a kept map, if there is one.
pub(crate) fn nested_str<'a>(kept: &'a Kept, path: &[&str]) -> Option<&'a str> {
    let (first, rest) = path.split_first()?;
    let mut value = kept.get(*first)?;
    for name in rest {
        value = value.get(*name)?;
    }
    value.as_str()
}

/// The id of the tenant every fresh store starts with; kickstart files name it
/// `#{FUSIONAUTH_TENANT_ID}`.
pub const DEFAULT_TENANT_ID: TenantId =
    TenantId::from_uuid(uuid::uuid!("6e1b4bfa-5c1a-4c3f-9a2e-0d8f3b6c1e01"));

/// Short one-time codes live at most this long, whatever the tenant says (S4).
pub(crate) const ONE_TIME_CODE_MAX_TTL_SECONDS: i64 = 600;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    #[serde(default)]
    pub id: TenantId,
    #[serde(default)]
    pub name: String,
    /// Empty in a request that names none: the tenant then gets one under the public URL.
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub email_configuration: TenantEmailConfiguration,
    #[serde(default)]
    pub external_identifier_configuration: ExternalIdentifierConfiguration,
    #[serde(default)]
    pub jwt_configuration: TenantJwtConfiguration,
    #[serde(default)]
    pub rate_limit_configuration: RateLimitConfiguration,
    #[serde(default)]
    pub multi_factor_configuration: TenantMultiFactorConfiguration,
    /// (ours) How the hosted login pages behave.
    #[serde(default)]
    pub hosted_pages_configuration: HostedPagesConfiguration,
    #[serde(default)]
    pub insert_instant: Instant,
    #[serde(default)]
    pub last_update_instant: Instant,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TenantEmailConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passwordless_email_template_id: Option<TemplateId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_from_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_from_name: Option<String>,
    /// A login with a code that was emailed proves the address and marks it verified, as
    /// FusionAuth does by default; off, only an explicit update verifies it.
    pub implicit_email_verification_allowed: bool,
    /// New users get a verification email, and a login of a user whose address is not
    /// verified answers 212.
    pub verify_email: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_email_template_id: Option<TemplateId>,
    /// `FormField` (only with `unverified.behavior: Gated`, as in FusionAuth): the mail
    /// carries a short code to type in besides the verification id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_strategy: Option<VerificationStrategy>,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

impl Default for TenantEmailConfiguration {
    fn default() -> Self {
        Self {
            passwordless_email_template_id: None,
            default_from_email: None,
            default_from_name: None,
            implicit_email_verification_allowed: true,
            verify_email: false,
            verification_email_template_id: None,
            verification_strategy: None,
            kept: Kept::default(),
        }
    }
}

impl TenantEmailConfiguration {
    /// Whether users of the tenant must verify their address before the hosted pages let
    /// them through (`unverified.behavior: Gated`).
    pub(crate) fn gates_unverified(&self) -> bool {
        self.verify_email && nested_str(&self.kept, &["unverified", "behavior"]) == Some("Gated")
    }

    /// The sender must be one line and an address; verifying addresses needs its template, and
    /// the `FormField` strategy needs gated unverified users.
    fn validate(&self, errors: &mut ValidationErrors) {
        errors.require_single_line(
            "tenant.emailConfiguration.defaultFromName",
            self.default_from_name.as_deref(),
        );
        errors.require_email(
            "tenant.emailConfiguration.defaultFromEmail",
            self.default_from_email.as_deref(),
        );
        if self.verify_email && self.verification_email_template_id.is_none() {
            errors.push(FieldError::missing(
                "tenant.emailConfiguration.verificationEmailTemplateId",
            ));
        }
        if self.verification_strategy == Some(VerificationStrategy::FormField)
            && nested_str(&self.kept, &["unverified", "behavior"]) != Some("Gated")
        {
            errors.push(FieldError::invalid(
                "tenant.emailConfiguration.verificationStrategy",
                "The FormField verification strategy needs unverified.behavior Gated.",
            ));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExternalIdentifierConfiguration {
    pub passwordless_login_time_to_live_in_seconds: i64,
    pub passwordless_login_generator: CodeGenerator,
    pub passwordless_login_one_time_code_generator: CodeGenerator,
    pub two_factor_id_time_to_live_in_seconds: i64,
    pub two_factor_trust_id_time_to_live_in_seconds: i64,
    /// How long a code sent by email for a second step holds (FusionAuth's default: 60 s).
    pub two_factor_one_time_code_id_time_to_live_in_seconds: i64,
    pub authorization_grant_id_time_to_live_in_seconds: i64,
    pub email_verification_id_time_to_live_in_seconds: i64,
    pub email_verification_id_generator: CodeGenerator,
    pub email_verification_one_time_code_generator: CodeGenerator,
    pub registration_verification_id_time_to_live_in_seconds: i64,
    pub registration_verification_id_generator: CodeGenerator,
    pub registration_verification_one_time_code_generator: CodeGenerator,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

impl Default for ExternalIdentifierConfiguration {
    fn default() -> Self {
        Self {
            passwordless_login_time_to_live_in_seconds: 180,
            passwordless_login_generator: CodeGenerator::LINK_DEFAULT,
            passwordless_login_one_time_code_generator: CodeGenerator::ONE_TIME_DEFAULT,
            two_factor_id_time_to_live_in_seconds: 300,
            two_factor_trust_id_time_to_live_in_seconds: 2_592_000,
            two_factor_one_time_code_id_time_to_live_in_seconds: 60,
            authorization_grant_id_time_to_live_in_seconds: 30,
            email_verification_id_time_to_live_in_seconds: 86_400,
            email_verification_id_generator: CodeGenerator::LINK_DEFAULT,
            email_verification_one_time_code_generator:
                CodeGenerator::VERIFICATION_ONE_TIME_DEFAULT,
            registration_verification_id_time_to_live_in_seconds: 86_400,
            registration_verification_id_generator: CodeGenerator::LINK_DEFAULT,
            registration_verification_one_time_code_generator:
                CodeGenerator::VERIFICATION_ONE_TIME_DEFAULT,
            kept: Kept::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TenantJwtConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_key_id: Option<KeyId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_key_id: Option<KeyId>,
    pub time_to_live_in_seconds: i64,
    pub refresh_token_time_to_live_in_minutes: i64,
    /// (ours) The algorithm of the key generated when the tenant is created.
    pub signing_algorithm: SigningAlgorithm,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

impl Default for TenantJwtConfiguration {
    fn default() -> Self {
        Self {
            access_token_key_id: None,
            id_token_key_id: None,
            time_to_live_in_seconds: 3600,
            refresh_token_time_to_live_in_minutes: 43_200,
            signing_algorithm: SigningAlgorithm::Rs256,
            kept: Kept::new(),
        }
    }
}

/// (ours) The hosted pages' options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HostedPagesConfiguration {
    /// A link asked for on the hosted page may finish in a browser that did not ask (a phone,
    /// say) once the person confirms there. Off by default: then only the browser that asked
    /// finishes it, with the link or the short code (S14), and a mail scanner that presses
    /// buttons signs nobody in.
    pub finish_in_other_browser: bool,
    /// The tenant's own page templates, each replacing the built-in one of the same name.
    pub templates: PageTemplates,
}

/// (ours) Templates for the hosted pages a tenant's users see, MiniJinja like the built-in
/// ones they replace (`layout` is the frame the others extend). Each is checked when the tenant
/// is saved (S29). Pages shown before anything names a tenant (an expired or unknown link, a
/// refused authorization request, a server error, sign-out) stay built-in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PageTemplates {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorize: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_browser: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limited: Option<String>,
}

impl PageTemplates {
    /// The templates given, by the page they replace (`check-email`) and their field name
    /// (`checkEmail`).
    pub fn given(&self) -> Vec<(&'static str, &'static str, &str)> {
        [
            ("layout", "layout", &self.layout),
            ("authorize", "authorize", &self.authorize),
            ("check-email", "checkEmail", &self.check_email),
            ("link", "link", &self.link),
            ("other-browser", "otherBrowser", &self.other_browser),
            ("limited", "limited", &self.limited),
        ]
        .into_iter()
        .filter_map(|(page, field, source)| source.as_deref().map(|s| (page, field, s)))
        .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RateLimitConfiguration {
    pub send_passwordless: RateLimit,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RateLimit {
    pub enabled: bool,
    pub limit: u32,
    pub time_period_in_seconds: i64,
}

impl Default for RateLimit {
    /// Enabled by default (ours): S8 wants every tenant protected out of the box.
    fn default() -> Self {
        Self {
            enabled: true,
            limit: 5,
            time_period_in_seconds: 60,
        }
    }
}

impl Tenant {
    /// FusionAuth's properties kept but not read: known names only, and none whose being
    /// ignored would weaken sign-in.
    fn check_kept(&self, errors: &mut ValidationErrors) {
        use super::kept::{self, check_kept, refuse_unhonoured};
        check_kept(errors, "tenant", &self.kept, kept::TENANT);
        let email = &self.email_configuration.kept;
        check_kept(
            errors,
            "tenant.emailConfiguration",
            email,
            kept::TENANT_EMAIL,
        );
        check_kept(
            errors,
            "tenant.externalIdentifierConfiguration",
            &self.external_identifier_configuration.kept,
            kept::EXTERNAL_IDENTIFIERS,
        );
        check_kept(
            errors,
            "tenant.jwtConfiguration",
            &self.jwt_configuration.kept,
            kept::JWT,
        );
        check_kept(
            errors,
            "tenant.rateLimitConfiguration",
            &self.rate_limit_configuration.kept,
            kept::RATE_LIMITS,
        );
        refuse_unhonoured(
            errors,
            "tenant.emailConfiguration.unverified.behavior",
            nested_str(email, &["unverified", "behavior"]) == Some("Gated")
                && !self.email_configuration.implicit_email_verification_allowed,
            "the hosted pages gate unverified users by the sign-in link itself, which verifies the address; with implicitEmailVerificationAllowed off nothing would gate them.",
        );
    }

    pub fn new(id: TenantId, name: &str, issuer: &str, now: Instant) -> Self {
        Self {
            id,
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            email_configuration: TenantEmailConfiguration::default(),
            external_identifier_configuration: ExternalIdentifierConfiguration::default(),
            jwt_configuration: TenantJwtConfiguration::default(),
            rate_limit_configuration: RateLimitConfiguration::default(),
            multi_factor_configuration: TenantMultiFactorConfiguration::default(),
            hosted_pages_configuration: HostedPagesConfiguration::default(),
            insert_instant: now,
            last_update_instant: now,
            kept: Kept::new(),
        }
    }

    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.name.trim().is_empty() {
            errors.push(FieldError::blank("tenant.name"));
        }
        if self.issuer.trim().is_empty() {
            errors.push(FieldError::blank("tenant.issuer"));
        }
        errors.require_single_line("tenant.name", Some(&self.name));
        errors.require_single_line("tenant.issuer", Some(&self.issuer));
        self.email_configuration.validate(&mut errors);
        self.external_identifier_configuration.validate(&mut errors);
        let jwt = &self.jwt_configuration;
        errors.require_positive(
            "tenant.jwtConfiguration.timeToLiveInSeconds",
            jwt.time_to_live_in_seconds,
        );
        errors.require_positive(
            "tenant.jwtConfiguration.refreshTokenTimeToLiveInMinutes",
            jwt.refresh_token_time_to_live_in_minutes,
        );
        for (_, field, source) in self.hosted_pages_configuration.templates.given() {
            super::template::check_template_source(
                &mut errors,
                &format!("tenant.hostedPagesConfiguration.templates.{field}"),
                source,
            );
        }
        let limit = &self.rate_limit_configuration.send_passwordless;
        if limit.enabled && (limit.limit == 0 || limit.time_period_in_seconds <= 0) {
            errors.push(FieldError::invalid(
                "tenant.rateLimitConfiguration.sendPasswordless",
                "The limit and time period must be greater than zero.",
            ));
        }
        self.multi_factor_configuration.validate(&mut errors);
        self.check_kept(&mut errors);
        errors.into_result()
    }

    /// The email templates the tenant names, with the field that names each.
    pub(crate) fn email_template_references(&self) -> Vec<(&'static str, TemplateId)> {
        let email = &self.email_configuration;
        [
            (
                "tenant.emailConfiguration.passwordlessEmailTemplateId",
                email.passwordless_email_template_id,
            ),
            (
                "tenant.emailConfiguration.verificationEmailTemplateId",
                email.verification_email_template_id,
            ),
            (
                "tenant.multiFactorConfiguration.email.templateId",
                self.multi_factor_configuration.email.template_id,
            ),
        ]
        .into_iter()
        .filter_map(|(field, id)| id.map(|id| (field, id)))
        .collect()
    }

    /// How long a link code lives (S4).
    pub(crate) fn code_ttl_seconds(&self) -> i64 {
        self.external_identifier_configuration
            .passwordless_login_time_to_live_in_seconds
    }

    /// How long a code with a short one-time code lives: the tenant's TTL, capped (S4).
    pub(crate) fn one_time_code_ttl_seconds(&self) -> i64 {
        self.code_ttl_seconds().min(ONE_TIME_CODE_MAX_TTL_SECONDS)
    }
}

impl ExternalIdentifierConfiguration {
    /// Every time to live positive (an authorization code's at most ten minutes), and every
    /// generator able to make what it names; link codes and verification ids only random bytes
    /// (S1).
    fn validate(&self, errors: &mut ValidationErrors) {
        let prefix = "tenant.externalIdentifierConfiguration";
        errors.require_positive(
            &format!("{prefix}.passwordlessLoginTimeToLiveInSeconds"),
            self.passwordless_login_time_to_live_in_seconds,
        );
        for (field, generator) in [
            (
                "passwordlessLoginGenerator",
                self.passwordless_login_generator,
            ),
            (
                "passwordlessLoginOneTimeCodeGenerator",
                self.passwordless_login_one_time_code_generator,
            ),
        ] {
            if let Err(e) = generator.validate(&format!("{prefix}.{field}")) {
                errors.extend(e);
            }
        }
        for (field, ttl) in [
            (
                "emailVerificationIdTimeToLiveInSeconds",
                self.email_verification_id_time_to_live_in_seconds,
            ),
            (
                "registrationVerificationIdTimeToLiveInSeconds",
                self.registration_verification_id_time_to_live_in_seconds,
            ),
        ] {
            errors.require_positive(&format!("{prefix}.{field}"), ttl);
        }
        for (field, generator) in [
            (
                "emailVerificationOneTimeCodeGenerator",
                self.email_verification_one_time_code_generator,
            ),
            (
                "registrationVerificationOneTimeCodeGenerator",
                self.registration_verification_one_time_code_generator,
            ),
        ] {
            if let Err(e) = generator.validate(&format!("{prefix}.{field}")) {
                errors.extend(e);
            }
        }
        for (field, generator) in [
            (
                "emailVerificationIdGenerator",
                self.email_verification_id_generator,
            ),
            (
                "registrationVerificationIdGenerator",
                self.registration_verification_id_generator,
            ),
        ] {
            if let Err(e) = generator.validate(&format!("{prefix}.{field}")) {
                errors.extend(e);
            } else if generator.kind != super::GeneratorType::RandomBytes {
                // A verification id in a link is, like a link code, the whole secret (S1).
                errors.push(FieldError::invalid(
                &format!("{prefix}.{field}.type"),
                "A verification id generator must be randomBytes: the id in a verification link is its only secret, and within the length limits only randomBytes reaches 128 bits.",
            ));
            }
        }
        if self.passwordless_login_generator.kind != super::GeneratorType::RandomBytes {
            // A link code is the only secret in a magic link: anything short of 128 bits is guessable (S1).
            errors.push(FieldError::invalid(
            &format!("{prefix}.passwordlessLoginGenerator.type"),
            "The passwordless login generator must be randomBytes: a link code is the only secret in a magic link, and within the length limits only randomBytes reaches 128 bits (12 alphanumeric characters carry at most about 72), which no attacker can search while a link lives.",
        ));
        }
        if !(1..=600).contains(&self.authorization_grant_id_time_to_live_in_seconds) {
            errors.push(FieldError::invalid(
                &format!("{prefix}.authorizationGrantIdTimeToLiveInSeconds"),
                "The value must be between 1 and 600.",
            ));
        }
        for (field, value) in [
            (
                "twoFactorIdTimeToLiveInSeconds",
                self.two_factor_id_time_to_live_in_seconds,
            ),
            (
                "twoFactorTrustIdTimeToLiveInSeconds",
                self.two_factor_trust_id_time_to_live_in_seconds,
            ),
            (
                "twoFactorOneTimeCodeIdTimeToLiveInSeconds",
                self.two_factor_one_time_code_id_time_to_live_in_seconds,
            ),
        ] {
            errors.require_positive(&format!("{prefix}.{field}"), value);
        }
    }
}

/// An issuer as verifiers compare it, loosely: scheme and host in lower case, the scheme's
/// default port and any trailing `/` dropped. Two tenants whose issuers are the same by this
/// measure would have verifiers (and libraries that normalise) take one's tokens for the
/// other's, so uniqueness is checked on it (S36, N14).
pub(crate) fn normalized_issuer(issuer: &str) -> String {
    let trimmed = issuer.trim().trim_end_matches('/');
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return trimmed.to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let mut authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(":443"),
        "http" => Some(":80"),
        _ => None,
    };
    if let Some(port) = default_port {
        if let Some(host) = authority.strip_suffix(port) {
            authority = host.to_owned();
        }
    }
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn n14_issuers_that_differ_only_in_case_port_or_a_trailing_slash_are_one() {
        let one = super::normalized_issuer("https://login.example.com/acme");
        for other in [
            "https://login.example.com/acme/",
            "HTTPS://Login.Example.com/acme",
            "https://login.example.com:443/acme//",
        ] {
            assert_eq!(super::normalized_issuer(other), one, "{other}");
        }
        // The path is the issuer's own: its case counts.
        assert_ne!(
            super::normalized_issuer("https://login.example.com/Acme"),
            one
        );
    }

    use super::*;
    use crate::domain::GeneratorType;

    fn tenant() -> Tenant {
        Tenant::new(
            DEFAULT_TENANT_ID,
            "Default",
            "https://login.example",
            Instant::from_secs(1),
        )
    }

    #[test]
    fn defaults_follow_fusionauth() {
        let t = tenant();
        assert_eq!(t.code_ttl_seconds(), 180);
        assert_eq!(
            t.external_identifier_configuration
                .passwordless_login_generator,
            CodeGenerator::LINK_DEFAULT
        );
        assert!(t.rate_limit_configuration.send_passwordless.enabled);
        assert!(t.validate().is_ok());
    }

    #[test]
    fn s4_one_time_codes_live_at_most_ten_minutes() {
        let mut t = tenant();
        t.external_identifier_configuration
            .passwordless_login_time_to_live_in_seconds = 3600;
        assert_eq!(t.one_time_code_ttl_seconds(), 600);
        assert_eq!(t.code_ttl_seconds(), 3600);
    }

    #[test]
    fn a_non_positive_ttl_is_rejected() {
        let mut t = tenant();
        t.external_identifier_configuration
            .passwordless_login_time_to_live_in_seconds = 0;
        let errors = t.validate().unwrap_err();
        assert!(errors.has_code(
            "[invalid]tenant.externalIdentifierConfiguration.passwordlessLoginTimeToLiveInSeconds"
        ));
    }

    #[test]
    fn s1_link_codes_must_be_random_bytes() {
        let mut t = tenant();
        t.external_identifier_configuration
            .passwordless_login_generator = CodeGenerator {
            length: 12,
            kind: GeneratorType::RandomDigits,
        };
        let errors = t.validate().unwrap_err();
        assert!(errors.has_code(
            "[invalid]tenant.externalIdentifierConfiguration.passwordlessLoginGenerator.type"
        ));
    }
}
