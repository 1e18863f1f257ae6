//! OAuth 2.0 authorization-code grants (RFC 6749, RFC 7636, RFC 9700): what an authorization
//! request asks for, the rules it must meet, and the grant a completed login leaves for the
//! token endpoint. Pure: the flows store and redeem grants.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ids::{ApplicationId, TenantId, UserId};
use super::secret::secrets_equal;
use super::time::Instant;

/// An authorization code lives at most this long, whatever the tenant says (S18).
pub(crate) const MAX_AUTHORIZATION_CODE_SECONDS: i64 = 60;

/// Longest accepted value of any authorization-request parameter; real ones are far shorter.
pub(crate) const MAX_PARAMETER_LEN: usize = 2048;

/// RFC 7636: a verifier is 43 to 128 characters of `[A-Za-z0-9-._~]`.
const VERIFIER_LEN: std::ops::RangeInclusive<usize> = 43..=128;

/// Why an authorization request cannot go on. None of these may redirect: the redirect URI is
/// not trusted yet, or is the thing that failed (S17).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthorizationError {
    #[error("the request has no valid client_id")]
    InvalidClient,
    #[error("the redirect_uri is not one the application authorized")]
    InvalidRedirectUri,
    #[error("only response_type=code is supported")]
    UnsupportedResponseType,
    #[error("the application does not allow the authorization_code grant")]
    GrantNotEnabled,
    #[error("PKCE: {0}")]
    Pkce(&'static str),
    #[error("the parameter {0} is malformed")]
    Malformed(&'static str),
    /// RFC 6749 section 3.1: a parameter may appear once.
    #[error("a parameter appears more than once")]
    Repeated,
    #[error("the application does not take passwordless logins")]
    PasswordlessDisabled,
}

/// What an authorization request asks for, from the authorize page's query or from the `state`
/// an API-started login carries (the seed's integration: FusionAuth's default template appends
/// those entries to the magic link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationRequest {
    pub client_id: ApplicationId,
    pub redirect_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The S256 challenge; `plain` is refused (S19).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
}

impl AuthorizationRequest {
    /// Reads the request's parameters by their OAuth names. `None` when nothing says this is an
    /// authorization request (no `client_id`, no `redirect_uri`): a plain passwordless login.
    pub(crate) fn from_parameters<'a>(
        lookup: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Option<Self>, AuthorizationError> {
        let client_id = match (lookup("client_id"), lookup("redirect_uri")) {
            (None, None) => return Ok(None),
            (Some(client), Some(_)) => client,
            (None, Some(_)) => return Err(AuthorizationError::InvalidClient),
            (Some(_), None) => return Err(AuthorizationError::InvalidRedirectUri),
        };
        let bounded = |name: &'static str| -> Result<Option<String>, AuthorizationError> {
            match lookup(name) {
                None | Some("") => Ok(None),
                Some(v) if v.len() > MAX_PARAMETER_LEN || v.chars().any(char::is_control) => {
                    Err(AuthorizationError::Malformed(name))
                }
                Some(v) => Ok(Some(v.to_owned())),
            }
        };
        let client_id = ApplicationId::parse(client_id).ok_or(AuthorizationError::InvalidClient)?;
        let redirect_uri =
            bounded("redirect_uri")?.ok_or(AuthorizationError::InvalidRedirectUri)?;
        if lookup("response_type") != Some("code") {
            return Err(AuthorizationError::UnsupportedResponseType);
        }
        let code_challenge = bounded("code_challenge")?;
        match (lookup("code_challenge_method"), &code_challenge) {
            (None, None) => {}
            (Some("S256"), Some(challenge)) if is_s256_challenge(challenge) => {}
            (None, Some(challenge)) if is_s256_challenge(challenge) => {
                // RFC 7636 would read a missing method as `plain`; `plain` is refused here, so
                // only a challenge shaped like S256 is taken without the method named (ours).
            }
            (Some("plain"), _) => {
                return Err(AuthorizationError::Pkce(
                    "code_challenge_method plain is not allowed",
                ))
            }
            _ => return Err(AuthorizationError::Pkce("the code_challenge is malformed")),
        }
        Ok(Some(Self {
            client_id,
            redirect_uri,
            scope: bounded("scope")?,
            state: bounded("state")?,
            nonce: bounded("nonce")?,
            code_challenge,
        }))
    }

    /// The request as OAuth parameters, to carry in a code's `state` (and, through the default
    /// template, in its link) and in the hosted page's hidden fields.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        let mut parameters = vec![
            ("client_id", self.client_id.to_string()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("response_type", "code".to_owned()),
        ];
        for (name, value) in [
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
        ] {
            if let Some(value) = value {
                parameters.push((name, value.clone()));
            }
        }
        if self.code_challenge.is_some() {
            parameters.push(("code_challenge_method", "S256".to_owned()));
        }
        parameters
    }

    pub(crate) fn has_scope(&self, wanted: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|scope| scope == wanted))
    }
}

/// A challenge made by S256: 43 characters of base64url, the size of a SHA-256 digest.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 S256: `BASE64URL(SHA256(verifier)) == challenge`, compared in constant time.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = VERIFIER_LEN.contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && secrets_equal(computed.as_bytes(), challenge.as_bytes())
}

/// Whether the login that made a grant found the user registered for the application: the
/// redirect's `userState`, as FusionAuth names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserState {
    Authenticated,
    AuthenticatedNotRegistered,
}

impl UserState {
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Authenticated => "Authenticated",
            UserState::AuthenticatedNotRegistered => "AuthenticatedNotRegistered",
        }
    }
}

/// What a completed login leaves for the token endpoint, stored under the hash of the
/// authorization code (S2) and redeemed once (S18).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationGrant {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub request: AuthorizationRequest,
    pub user_state: UserState,
    pub auth_time: Instant,
    pub expires_at: Instant,
}

/// `redirect_uri` with the authorization response appended as query parameters, keeping any
/// query the registered URI has (RFC 6749 3.1.2).
pub(crate) fn redirect_with(redirect_uri: &str, parameters: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in parameters {
        query.append_pair(name, value);
    }
    // A fragment would swallow the parameters; registered URIs should not have one.
    let base = redirect_uri
        .split_once('#')
        .map_or(redirect_uri, |(base, _)| base);
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{}", query.finish())
}

/// The CSP source a redirect URI's origin is (`https://app.example:8443`, or `com.example.app:`
/// for a private-use scheme), for `form-action`: a form posted on our pages ends in a redirect
/// there, which the browser checks against it. `None` for anything that is not plainly an
/// origin, so nothing a URL holds can add to the policy.
pub(crate) fn form_action_source(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    match rest.strip_prefix("//") {
        Some(after) if scheme == "https" || scheme == "http" => {
            let authority = after.split(['/', '?', '#']).next()?.to_ascii_lowercase();
            let plain = !authority.is_empty()
                && authority
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
            plain.then(|| format!("{scheme}://{authority}"))
        }
        _ if scheme.contains('.') => Some(format!("{scheme}:")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::application::Application;
    use serde_json::json;
    use std::collections::HashMap;

    const CLIENT: &str = "3c219e58-ed0e-4b18-ad48-f4f92793ae32";

    fn request(pairs: &[(&str, &str)]) -> Result<Option<AuthorizationRequest>, AuthorizationError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        AuthorizationRequest::from_parameters(|name| map.get(name).copied())
    }

    fn application(pkce_policy: Option<&str>) -> Application {
        serde_json::from_value(json!({
            "id": CLIENT,
            "tenantId": "6e1b4bfa-5c1a-4c3f-9a2e-0d8f3b6c1e01",
            "name": "app",
            "active": true,
            "oauthConfiguration": {
                "authorizedRedirectURLs": ["https://app.example/callback"],
                "proofKeyForCodeExchangePolicy": pkce_policy,
            }
        }))
        .unwrap()
    }

    const BASE: &[(&str, &str)] = &[
        ("client_id", CLIENT),
        ("redirect_uri", "https://app.example/callback"),
        ("response_type", "code"),
    ];

    #[test]
    fn no_client_and_no_redirect_is_not_an_authorization_request() {
        assert_eq!(request(&[("state", "x")]), Ok(None));
    }

    #[test]
    fn s17_the_redirect_uri_must_equal_an_authorized_one_exactly() {
        let app = application(None);
        for near_miss in [
            "https://app.example/callback/",
            "https://app.example/callback?x=1",
            "https://APP.example/callback",
            "http://app.example/callback",
            "https://app.example/callbackx",
            "https://app.example.evil.example/callback",
            "https://app.example/Callback",
        ] {
            let mut pairs = BASE.to_vec();
            pairs[1] = ("redirect_uri", near_miss);
            let parsed = request(&pairs).unwrap().unwrap();
            assert_eq!(
                app.check_authorization(&parsed),
                Err(AuthorizationError::InvalidRedirectUri),
                "{near_miss}"
            );
        }
        let exact = request(BASE).unwrap().unwrap();
        assert_eq!(app.check_authorization(&exact), Ok(()));
    }

    #[test]
    fn s19_plain_is_refused_and_a_required_challenge_must_be_there() {
        let mut plain = BASE.to_vec();
        plain.push(("code_challenge", "abc"));
        plain.push(("code_challenge_method", "plain"));
        assert!(matches!(request(&plain), Err(AuthorizationError::Pkce(_))));
        let mut short = BASE.to_vec();
        short.push(("code_challenge", "abc"));
        short.push(("code_challenge_method", "S256"));
        assert!(matches!(request(&short), Err(AuthorizationError::Pkce(_))));
        let strict = application(Some("Required"));
        let without = request(BASE).unwrap().unwrap();
        assert!(matches!(
            strict.check_authorization(&without),
            Err(AuthorizationError::Pkce(_))
        ));
    }

    #[test]
    fn s19_the_rfc_7636_example_verifier_matches_its_challenge() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!verifier_matches(challenge, challenge));
        assert!(!verifier_matches("short", challenge));
    }

    #[test]
    fn only_the_code_response_type_is_served() {
        let mut token = BASE.to_vec();
        token[2] = ("response_type", "token");
        assert_eq!(
            request(&token),
            Err(AuthorizationError::UnsupportedResponseType)
        );
    }

    #[test]
    fn the_response_keeps_the_registered_query_and_drops_a_fragment() {
        assert_eq!(
            redirect_with("https://a.example/cb", &[("code", "c"), ("state", "a b&c")]),
            "https://a.example/cb?code=c&state=a+b%26c"
        );
        assert_eq!(
            redirect_with("https://a.example/cb?tenant=1#x", &[("code", "c")]),
            "https://a.example/cb?tenant=1&code=c"
        );
    }
}
