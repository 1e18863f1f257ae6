use serde::{Deserialize, Serialize};

use super::code::LoginStrategy;
use super::kept::Kept;

use super::ids::{ApplicationId, KeyId, RoleId, TemplateId, TenantId};
use super::oauth::{AuthorizationError, AuthorizationRequest};
use super::secret::{Secret, SecretHash};
use super::time::Instant;
use super::two_factor::ApplicationMultiFactorConfiguration;
use super::validation::{FieldError, ValidationErrors};
use super::verification::VerificationStrategy;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    #[serde(default)]
    pub id: ApplicationId,
    /// Nil in a request that names no tenant: the caller's tenant is meant.
    #[serde(default)]
    pub tenant_id: TenantId,
    #[serde(default)]
    pub name: String,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub roles: Vec<ApplicationRole>,
    #[serde(default)]
    pub passwordless_configuration: PasswordlessConfiguration,
    #[serde(default)]
    pub jwt_configuration: ApplicationJwtConfiguration,
    #[serde(default)]
    pub login_configuration: LoginConfiguration,
    #[serde(default)]
    pub oauth_configuration: OAuthConfiguration,
    #[serde(default)]
    pub email_configuration: ApplicationEmailConfiguration,
    #[serde(default)]
    pub multi_factor_configuration: ApplicationMultiFactorConfiguration,
    /// A new registration starts unverified and gets a verification email; its logins answer
    /// 213 until it is verified.
    #[serde(default)]
    pub verify_registration: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_email_template_id: Option<TemplateId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_strategy: Option<VerificationStrategy>,
    #[serde(default)]
    pub insert_instant: Instant,
    #[serde(default)]
    pub last_update_instant: Instant,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

/// A client secret named on create is at least this long: a guessable one would make the
/// confidential client's codes redeemable by anyone who intercepts them.
pub(crate) const MIN_CLIENT_SECRET_LEN: usize = 32;

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRole {
    #[serde(default = "RoleId::nil")]
    pub id: RoleId,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub is_super_role: bool,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

impl RoleId {
    fn nil() -> RoleId {
        RoleId::from_uuid(uuid::Uuid::nil())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PasswordlessConfiguration {
    pub enabled: bool,
    /// How a start that names no `loginStrategy` delivers: a link, or a link and a short code.
    pub email_login_strategy: LoginStrategy,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationJwtConfiguration {
    pub enabled: bool,
    pub time_to_live_in_seconds: i64,
    pub refresh_token_time_to_live_in_minutes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_key_id: Option<KeyId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_key_id: Option<KeyId>,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

impl Default for ApplicationJwtConfiguration {
    fn default() -> Self {
        Self {
            enabled: false,
            time_to_live_in_seconds: 3600,
            refresh_token_time_to_live_in_minutes: 43_200,
            access_token_key_id: None,
            id_token_key_id: None,
            kept: Kept::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoginConfiguration {
    pub generate_refresh_tokens: bool,
    pub require_authentication: bool,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OAuthConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(rename = "authorizedRedirectURLs")]
    pub authorized_redirect_urls: Vec<String>,
    /// Where logout sends the browser when the request names no allowed URI.
    #[serde(rename = "logoutURL", skip_serializing_if = "Option::is_none")]
    pub logout_url: Option<String>,
    pub enabled_grants: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_key_for_code_exchange_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_authentication_policy: Option<String>,
    /// Write-only: a secret named on create (a kickstart file may bring its own) or generated
    /// then, shown once in the create response and stored only as its hash (S2; FusionAuth
    /// shows it again on every read, ours does not).
    #[serde(default, skip_serializing)]
    pub client_secret: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<SecretHash>,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationEmailConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passwordless_email_template_id: Option<TemplateId>,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

/// The longest redirect or logout URL accepted.
const MAX_REDIRECT_URL_LEN: usize = 2048;

/// Why a URL may not be a redirect or logout target, or `None` when it may (S36): an absolute
/// `https` URL; `http` only to a loopback host (RFC 8252 7.3); or a native app's private-use
/// scheme, which is a reversed domain name (RFC 8252 7.1, `com.example.app:/callback`). Never
/// a fragment (RFC 6749 3.1.2), credentials in the URL, spaces or control characters, so never
/// `javascript:`, `data:` or `file:` either.
pub(crate) fn redirect_url_problem(url: &str) -> Option<&'static str> {
    if url.is_empty() || url.len() > MAX_REDIRECT_URL_LEN {
        return Some("must be 1 to 2048 characters.");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces or control characters.");
    }
    if url.contains('#') {
        return Some("must not have a fragment.");
    }
    let Some((scheme, rest)) = url.split_once(':') else {
        return Some("must be an absolute URL.");
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Some("must be an absolute URL.");
    }
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest
        .strip_prefix("//")
        .map(|after| after.split(['/', '?']).next().unwrap_or_default());
    match scheme.as_str() {
        "https" | "http" => {
            let Some(authority) = authority.filter(|a| !a.is_empty()) else {
                return Some("must name a host.");
            };
            if authority.contains('@') {
                return Some("must not carry credentials.");
            }
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default().to_owned(),
                None => authority.split(':').next().unwrap_or_default().to_ascii_lowercase(),
            };
            if host.is_empty() {
                return Some("must name a host.");
            }
            let loopback = host == "localhost"
                || host == "::1"
                || host
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback());
            (scheme == "http" && !loopback)
                .then_some("must use https, or http only to a loopback host.")
        }
        // A private-use scheme is a reversed domain name the app owns: it has a dot.
        _ if scheme.contains('.') => None,
        _ => Some("must use https, http to a loopback host, or a private-use scheme such as com.example.app."),
    }
}

impl Application {
    /// Whether this application takes `request`: it is the client and takes the grant, the
    /// redirect URI is one it authorized by string equality (S17), and its PKCE policy holds
    /// (S19).
    pub(crate) fn check_authorization(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<(), AuthorizationError> {
        let application = self;
        if application.id != request.client_id || !application.active {
            return Err(AuthorizationError::InvalidClient);
        }
        let oauth = &application.oauth_configuration;
        if !oauth
            .authorized_redirect_urls
            .iter()
            .any(|allowed| allowed == &request.redirect_uri)
        {
            return Err(AuthorizationError::InvalidRedirectUri);
        }
        if !oauth.enabled_grants.is_empty()
            && !oauth
                .enabled_grants
                .iter()
                .any(|g| g == "authorization_code")
        {
            return Err(AuthorizationError::GrantNotEnabled);
        }
        if request.code_challenge.is_none() && application.requires_pkce() {
            return Err(AuthorizationError::Pkce(
                "the application requires a code_challenge",
            ));
        }
        Ok(())
    }

    /// The email templates the application names, with the field that names each.
    pub(crate) fn email_template_references(&self) -> Vec<(&'static str, TemplateId)> {
        [
            (
                "application.emailConfiguration.passwordlessEmailTemplateId",
                self.email_configuration.passwordless_email_template_id,
            ),
            (
                "application.verificationEmailTemplateId",
                self.verification_email_template_id,
            ),
            (
                "application.multiFactorConfiguration.email.templateId",
                self.multi_factor_configuration.email.template_id,
            ),
        ]
        .into_iter()
        .filter_map(|(field, id)| id.map(|id| (field, id)))
        .collect()
    }

    /// FusionAuth's properties kept but not read: known names only, and none whose being
    /// ignored would weaken sign-in.
    fn check_kept(&self, errors: &mut ValidationErrors) {
        use super::kept::{self, check_kept, refuse_unhonoured};
        use super::tenant::nested_str;
        check_kept(errors, "application", &self.kept, kept::APPLICATION);
        self.multi_factor_configuration.validate(errors);
        for role in &self.roles {
            check_kept(errors, "application.roles", &role.kept, kept::ROLE);
        }
        for (path, kept, known) in [
            (
                "application.passwordlessConfiguration",
                &self.passwordless_configuration.kept,
                kept::PASSWORDLESS,
            ),
            (
                "application.jwtConfiguration",
                &self.jwt_configuration.kept,
                kept::JWT,
            ),
            (
                "application.loginConfiguration",
                &self.login_configuration.kept,
                kept::LOGIN,
            ),
            (
                "application.oauthConfiguration",
                &self.oauth_configuration.kept,
                kept::OAUTH,
            ),
            (
                "application.emailConfiguration",
                &self.email_configuration.kept,
                kept::APPLICATION_EMAIL,
            ),
        ] {
            check_kept(errors, path, kept, known);
        }
        refuse_unhonoured(
            errors,
            "application.unverified.behavior",
            nested_str(&self.kept, &["unverified", "behavior"]) == Some("Gated"),
            "the hosted sign-in does not hold back unverified registrations; their logins answer 213 and the application decides.",
        );
        refuse_unhonoured(
            errors,
            "application.oauthConfiguration.requireRegistration",
            self.oauth_configuration.kept.get("requireRegistration")
                == Some(&serde_json::Value::Bool(true)),
            "the hosted sign-in completes for users without a registration (userState AuthenticatedNotRegistered).",
        );
    }

    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.name.trim().is_empty() {
            errors.push(FieldError::blank("application.name"));
        }
        if self.verify_registration && self.verification_email_template_id.is_none() {
            errors.push(FieldError::missing(
                "application.verificationEmailTemplateId",
            ));
        }
        let jwt = &self.jwt_configuration;
        errors.require_positive(
            "application.jwtConfiguration.timeToLiveInSeconds",
            jwt.time_to_live_in_seconds,
        );
        errors.require_positive(
            "application.jwtConfiguration.refreshTokenTimeToLiveInMinutes",
            jwt.refresh_token_time_to_live_in_minutes,
        );
        if let Some(secret) = &self.oauth_configuration.client_secret {
            let text = secret.expose();
            if !(MIN_CLIENT_SECRET_LEN..=super::secret::MAX_SECRET_LEN).contains(&text.len())
                || !text.bytes().all(|b| b.is_ascii_graphic())
            {
                errors.push(FieldError::invalid(
                    "application.oauthConfiguration.clientSecret",
                    format!("A client secret is {MIN_CLIENT_SECRET_LEN} to 256 printable ASCII characters."),
                ));
            }
        }
        let oauth = &self.oauth_configuration;
        for url in &oauth.authorized_redirect_urls {
            if let Some(problem) = redirect_url_problem(url) {
                errors.push(FieldError::invalid(
                    "application.oauthConfiguration.authorizedRedirectURLs",
                    format!("[{url}] {problem}"),
                ));
            }
        }
        if let Some(problem) = oauth.logout_url.as_deref().and_then(redirect_url_problem) {
            errors.push(FieldError::invalid(
                "application.oauthConfiguration.logoutURL",
                problem,
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for role in &self.roles {
            if role.name.trim().is_empty() {
                errors.push(FieldError::blank("application.roles.name"));
            } else if !seen.insert(role.name.as_str()) {
                errors.push(FieldError::new(
                    "duplicate",
                    "application.roles.name",
                    format!("The role [{}] is defined twice.", role.name),
                ));
            }
        }
        self.check_kept(&mut errors);
        errors.into_result()
    }

    /// FusionAuth's `proofKeyForCodeExchangePolicy: Required`: every authorization request
    /// brings a challenge. The other policies are settled at the token endpoint.
    pub(crate) fn requires_pkce(&self) -> bool {
        self.oauth_configuration
            .proof_key_for_code_exchange_policy
            .as_deref()
            == Some("Required")
    }

    /// Whether a token request must authenticate the client, given whether its grant was made
    /// with a PKCE challenge. FusionAuth's default policy is `Required`; a client that
    /// authenticates with nothing must have used PKCE whatever the policy says (S19, ours).
    pub(crate) fn requires_client_authentication(&self, used_pkce: bool) -> bool {
        match self
            .oauth_configuration
            .client_authentication_policy
            .as_deref()
        {
            Some("NotRequired") | Some("NotRequiredWhenUsingPKCE") => !used_pkce,
            _ => true,
        }
    }

    /// Compares a presented client secret with the stored hash in constant time (S3).
    pub(crate) fn client_secret_matches(&self, presented: &Secret) -> bool {
        self.oauth_configuration
            .client_secret_hash
            .is_some_and(|hash| hash.matches(&presented.hash()))
    }

    pub(crate) fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.name == name)
    }

    pub(crate) fn default_roles(&self) -> Vec<String> {
        self.roles
            .iter()
            .filter(|r| r.is_default)
            .map(|r| r.name.clone())
            .collect()
    }

    /// The access-token lifetime: the application's own when its JWT configuration is enabled,
    /// else the tenant's, as FusionAuth resolves it.
    pub(crate) fn token_ttl_seconds(&self, tenant_default: i64) -> i64 {
        if self.jwt_configuration.enabled {
            self.jwt_configuration.time_to_live_in_seconds
        } else {
            tenant_default
        }
    }

    pub(crate) fn refresh_token_ttl_minutes(&self, tenant_default: i64) -> i64 {
        if self.jwt_configuration.enabled {
            self.jwt_configuration.refresh_token_time_to_live_in_minutes
        } else {
            tenant_default
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn n21_s36_redirect_urls_are_https_loopback_http_or_a_private_use_scheme() {
        for good in [
            "https://app.example/callback",
            "https://app.example:8443/cb?x=1",
            "http://localhost:3000/oauth-redirect",
            "http://127.0.0.1:9011/demo/callback",
            "http://[::1]:8080/cb",
            "com.example.app:/callback",
            "com.example.app://callback",
        ] {
            assert_eq!(super::redirect_url_problem(good), None, "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "http://app.example/callback",
            "https://app.example/callback#x",
            "https://user:pass@app.example/cb",
            "https:///nohost",
            "//app.example/cb",
            "/relative",
            "https://app.example/a b",
            "",
        ] {
            assert!(super::redirect_url_problem(bad).is_some(), "{bad}");
        }
    }
}
