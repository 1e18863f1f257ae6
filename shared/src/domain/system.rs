//! The system configuration: what holds for every tenant. This server acts on its CORS
//! configuration (FusionAuth's CORS filter: one list of origins for the whole system) and keeps
//! the rest of FusionAuth's properties as they were given.

use serde::{Deserialize, Serialize};

use super::kept::Kept;
use super::time::Instant;
use super::validation::{FieldError, ValidationErrors};

/// FusionAuth's `SystemConfiguration`, of which this server reads `corsConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemConfiguration {
    #[serde(default)]
    pub cors_configuration: CorsConfiguration,
    #[serde(default)]
    pub insert_instant: Instant,
    #[serde(default)]
    pub last_update_instant: Instant,
    /// FusionAuth's properties of this object that are stored and returned, not read.
    #[serde(flatten)]
    pub kept: Kept,
}

/// The methods FusionAuth's `HTTPMethod` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Delete,
    Head,
    Options,
    Patch,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
            HttpMethod::Patch => "PATCH",
        }
    }
}

/// FusionAuth's `CORSConfiguration`, with its defaults: off, and when turned on, reads only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CorsConfiguration {
    pub enabled: bool,
    pub allow_credentials: bool,
    pub allowed_headers: Vec<String>,
    pub allowed_methods: Vec<HttpMethod>,
    /// `scheme://host[:port]` each, or `*` for any origin (never with credentials).
    pub allowed_origins: Vec<String>,
    pub debug: bool,
    pub exposed_headers: Vec<String>,
    pub preflight_max_age_in_seconds: i64,
}

impl Default for CorsConfiguration {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_credentials: false,
            allowed_headers: [
                "Accept",
                "Access-Control-Request-Headers",
                "Access-Control-Request-Method",
                "Authorization",
                "Content-Type",
                "Last-Modified",
                "Origin",
                "X-FusionAuth-TenantId",
                "X-Requested-With",
            ]
            .map(str::to_owned)
            .to_vec(),
            allowed_methods: vec![HttpMethod::Get, HttpMethod::Options],
            allowed_origins: Vec::new(),
            debug: false,
            exposed_headers: Vec::new(),
            preflight_max_age_in_seconds: 1800,
        }
    }
}

/// FusionAuth's properties of a `SystemConfiguration` (client libraries 1.69).
const SYSTEM_CONFIGURATION: &[&str] = &[
    "auditLogConfiguration",
    "data",
    "eventLogConfiguration",
    "loginRecordConfiguration",
    "reportTimezone",
    "trustedProxyConfiguration",
    "uiConfiguration",
    "usageDataConfiguration",
    "webhookEventLogConfiguration",
];

/// A header name as RFC 9110 spells one (a token): nothing that could end the header line or
/// start another when it is written into `Access-Control-Allow-Headers`.
fn is_header_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 256
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An origin as browsers send it: `http` or `https`, a host, maybe a port, nothing after.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    let (host, port) = match rest.strip_prefix('[') {
        // An IPv6 literal: `[…]`, then nothing or `:port`.
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, "")) => (address, None),
            Some((address, tail)) => match tail.strip_prefix(':') {
                Some(port) => (address, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    matches!(scheme, "http" | "https")
        && text.len() <= 512
        && port_ok
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
}

impl SystemConfiguration {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        super::kept::check_kept(
            &mut errors,
            "systemConfiguration",
            &self.kept,
            SYSTEM_CONFIGURATION,
        );
        let cors = &self.cors_configuration;
        let prefix = "systemConfiguration.corsConfiguration";
        for (field, names) in [
            ("allowedHeaders", &cors.allowed_headers),
            ("exposedHeaders", &cors.exposed_headers),
        ] {
            if let Some(bad) = names.iter().find(|name| !is_header_name(name)) {
                errors.push(FieldError::invalid(
                    &format!("{prefix}.{field}"),
                    format!("[{}] is not a header name.", bad.escape_debug()),
                ));
            }
        }
        if let Some(bad) = cors
            .allowed_origins
            .iter()
            .find(|origin| *origin != "*" && !is_origin(origin))
        {
            errors.push(FieldError::invalid(
                &format!("{prefix}.allowedOrigins"),
                format!(
                    "[{}] is not an origin: give the scheme, the host and the port if it is not the scheme's, as in https://app.example.com, or * for any.",
                    bad.escape_debug()
                ),
            ));
        }
        if cors.allow_credentials && cors.allowed_origins.iter().any(|o| o == "*") {
            // Any site could then act with the user's cookies and read the answers.
            errors.push(FieldError::invalid(
                &format!("{prefix}.allowCredentials"),
                "Credentials may not be allowed for every origin (*): name the origins that may send them.",
            ));
        }
        if cors.preflight_max_age_in_seconds < 0 {
            errors.push(FieldError::invalid(
                &format!("{prefix}.preflightMaxAgeInSeconds"),
                "The value may not be negative.",
            ));
        }
        errors.into_result()
    }
}

/// How a cross-origin request fares under the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsVerdict {
    /// Not a CORS concern: no `Origin`, or CORS is off.
    NotApplicable,
    /// Allowed: these headers go on the answer.
    Allowed(Vec<(&'static str, String)>),
    /// An origin, method or header the configuration does not allow.
    Refused,
}

impl CorsConfiguration {
    fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
    }

    fn allows_method(&self, method: &str) -> bool {
        self.allowed_methods
            .iter()
            .any(|allowed| allowed.as_str().eq_ignore_ascii_case(method))
    }

    /// The headers every allowed answer carries. The origin is echoed rather than `*`, so a
    /// cache keyed on `Vary: Origin` never serves one origin's answer to another.
    fn origin_headers(&self, origin: &str) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("access-control-allow-origin", origin.to_owned()),
            ("vary", "Origin".to_owned()),
        ];
        if self.allow_credentials {
            headers.push(("access-control-allow-credentials", "true".to_owned()));
        }
        headers
    }

    /// A preflight (`OPTIONS` with `Access-Control-Request-Method`): allowed only for an
    /// allowed origin asking for an allowed method and allowed headers.
    pub fn preflight(
        &self,
        origin: &str,
        method: &str,
        request_headers: Option<&str>,
    ) -> CorsVerdict {
        if !self.enabled {
            return CorsVerdict::Refused;
        }
        if !self.allows_origin(origin) || !self.allows_method(method) {
            return CorsVerdict::Refused;
        }
        let asked = request_headers
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty());
        for name in asked {
            if !self
                .allowed_headers
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(name))
            {
                return CorsVerdict::Refused;
            }
        }
        let mut headers = self.origin_headers(origin);
        let methods: Vec<_> = self.allowed_methods.iter().map(|m| m.as_str()).collect();
        headers.push(("access-control-allow-methods", methods.join(",")));
        if !self.allowed_headers.is_empty() {
            headers.push((
                "access-control-allow-headers",
                self.allowed_headers.join(","),
            ));
        }
        headers.push((
            "access-control-max-age",
            self.preflight_max_age_in_seconds.to_string(),
        ));
        CorsVerdict::Allowed(headers)
    }

    /// An actual request with an `Origin`. A refused one is still answered, without CORS
    /// headers: the browser then keeps the answer from the page that asked.
    pub fn actual(&self, origin: &str, method: &str) -> CorsVerdict {
        if !self.enabled {
            return CorsVerdict::NotApplicable;
        }
        if !self.allows_origin(origin) || !(self.allows_method(method) || method == "HEAD") {
            return CorsVerdict::Refused;
        }
        let mut headers = self.origin_headers(origin);
        if !self.exposed_headers.is_empty() {
            headers.push((
                "access-control-expose-headers",
                self.exposed_headers.join(","),
            ));
        }
        CorsVerdict::Allowed(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(origins: &[&str]) -> CorsConfiguration {
        CorsConfiguration {
            enabled: true,
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            allowed_methods: vec![HttpMethod::Get, HttpMethod::Post, HttpMethod::Options],
            ..CorsConfiguration::default()
        }
    }

    fn header<'a>(verdict: &'a CorsVerdict, name: &str) -> Option<&'a str> {
        match verdict {
            CorsVerdict::Allowed(headers) => headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    #[test]
    fn cors_is_off_by_default_and_then_refuses_every_preflight() {
        let cors = CorsConfiguration::default();
        assert!(!cors.enabled);
        assert_eq!(
            cors.preflight("https://app.example", "GET", None),
            CorsVerdict::Refused
        );
        assert_eq!(
            cors.actual("https://app.example", "GET"),
            CorsVerdict::NotApplicable
        );
    }

    #[test]
    fn a_preflight_needs_an_allowed_origin_method_and_headers() {
        let cors = enabled(&["https://app.example"]);
        let ok = cors.preflight(
            "https://app.example",
            "POST",
            Some("content-type, Authorization"),
        );
        assert_eq!(
            header(&ok, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(
            header(&ok, "access-control-allow-methods"),
            Some("GET,POST,OPTIONS")
        );
        assert_eq!(header(&ok, "access-control-max-age"), Some("1800"));
        assert_eq!(header(&ok, "vary"), Some("Origin"));
        assert_eq!(header(&ok, "access-control-allow-credentials"), None);
        for (origin, method, headers) in [
            ("https://evil.example", "POST", None),
            ("https://app.example", "DELETE", None),
            ("https://app.example", "POST", Some("X-Secret")),
            ("http://app.example", "POST", None),
        ] {
            assert_eq!(
                cors.preflight(origin, method, headers),
                CorsVerdict::Refused,
                "{origin} {method} {headers:?}"
            );
        }
    }

    #[test]
    fn an_allowed_actual_request_echoes_the_origin_and_exposes_headers() {
        let mut cors = enabled(&["*"]);
        cors.exposed_headers = vec!["X-Request-Id".into()];
        let ok = cors.actual("https://any.example", "GET");
        assert_eq!(
            header(&ok, "access-control-allow-origin"),
            Some("https://any.example")
        );
        assert_eq!(
            header(&ok, "access-control-expose-headers"),
            Some("X-Request-Id")
        );
        assert_eq!(
            cors.actual("https://any.example", "DELETE"),
            CorsVerdict::Refused
        );
    }

    #[test]
    fn credentials_are_announced_only_when_allowed() {
        let mut cors = enabled(&["https://app.example"]);
        cors.allow_credentials = true;
        let ok = cors.actual("https://app.example", "GET");
        assert_eq!(
            header(&ok, "access-control-allow-credentials"),
            Some("true")
        );
    }

    fn config(cors: CorsConfiguration) -> SystemConfiguration {
        SystemConfiguration {
            cors_configuration: cors,
            ..SystemConfiguration::default()
        }
    }

    #[test]
    fn what_reaches_a_header_is_checked_when_it_is_saved() {
        let mut cors = enabled(&["https://app.example:8443", "http://localhost:3000", "*"]);
        assert_eq!(config(cors.clone()).validate(), Ok(()));
        cors.allowed_headers.push("X-Ok\r\nSet-Cookie: a=b".into());
        cors.exposed_headers.push("".into());
        cors.allowed_origins.push("https://app.example/path".into());
        cors.allow_credentials = true;
        cors.preflight_max_age_in_seconds = -1;
        let errors = config(cors).validate().unwrap_err();
        let codes: Vec<_> = errors
            .field_errors
            .iter()
            .map(|e| e.code.as_str())
            .collect();
        assert_eq!(
            codes,
            [
                "[invalid]systemConfiguration.corsConfiguration.allowedHeaders",
                "[invalid]systemConfiguration.corsConfiguration.exposedHeaders",
                "[invalid]systemConfiguration.corsConfiguration.allowedOrigins",
                "[invalid]systemConfiguration.corsConfiguration.allowCredentials",
                "[invalid]systemConfiguration.corsConfiguration.preflightMaxAgeInSeconds",
            ]
        );
    }

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for good in [
            "https://app.example",
            "http://localhost:3000",
            "https://[::1]:8443",
            "http://[::1]",
        ] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "app.example",
            "ftp://app.example",
            "https://",
            "https://app.example/",
            "https://app.example:",
            "https://app.example:99999a",
            "https://a b",
            "https://app.example\r\nX: y",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn properties_fusionauth_does_not_know_are_refused() {
        let mut configuration = SystemConfiguration::default();
        configuration
            .kept
            .insert("reportTimezone".into(), "America/Denver".into());
        assert_eq!(configuration.validate(), Ok(()));
        configuration.kept.insert("nonsense".into(), true.into());
        assert!(configuration.validate().is_err());
    }
}
