//! API-key authentication, endpoint permissions and tenant locks (S21, S22).

use http::HeaderMap;
use tracing::warn;

use super::errors::ApiError;
use super::{Caller, HttpRequest};
use crate::app::App;
use crate::domain::secret::MAX_SECRET_LEN;
use crate::domain::validation::FieldError;
use crate::domain::{ApiKey, Secret, TenantId};
use crate::flows::tenancy::TenantScope;

pub(crate) const TENANT_HEADER: &str = "x-fusionauth-tenantid";

fn header_tenant(headers: &HeaderMap) -> Result<Option<TenantId>, ApiError> {
    match headers.get(TENANT_HEADER) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(TenantId::parse)
            .map(Some)
            .ok_or_else(|| {
                ApiError::field(FieldError::invalid(
                    "tenantId",
                    "The X-FusionAuth-TenantId header is not a UUID.",
                ))
            }),
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No API key, as in FusionAuth (send, login, the JWKS).
    Public,
    /// An API key whose permissions cover this endpoint (S21).
    ApiKey { endpoint: &'static str },
    /// Public, but a key presented is checked, and forms that act on an address rather than a
    /// code need one permitted for `endpoint` (send's `{applicationId, loginId}` form, S31).
    PublicWithKeyForm { endpoint: &'static str },
    /// Only a key with no permissions and no tenant lock: managing keys is managing everything.
    /// No permission can name these routes (S28), so no limited key ever reaches them.
    UnrestrictedKey,
}

impl Access {
    /// The endpoint name API-key permissions use for this route, if a key can matter here.
    pub fn endpoint(self) -> Option<&'static str> {
        match self {
            Access::Public | Access::UnrestrictedKey => None,
            Access::ApiKey { endpoint } | Access::PublicWithKeyForm { endpoint } => Some(endpoint),
        }
    }
}

/// Checks the caller's right to a route with `access` and works out the tenant scope of the
/// request.
pub async fn authorize(
    app: &App,
    request: &HttpRequest,
    access: Access,
    caller: Caller,
) -> Result<TenantScope, ApiError> {
    let header = header_tenant(&request.headers)?;
    let (endpoint, required) = match (access, caller) {
        (_, Caller::Kickstart) => {
            return Ok(TenantScope {
                explicit: header,
                authenticated: true,
            })
        }
        (Access::Public, Caller::Client) => {
            return Ok(TenantScope {
                explicit: header,
                authenticated: false,
            })
        }
        (Access::ApiKey { endpoint }, Caller::Client) => (endpoint, true),
        (Access::UnrestrictedKey, Caller::Client) => ("/api/api-key", true),
        (Access::PublicWithKeyForm { endpoint }, Caller::Client) => (endpoint, false),
    };
    let presented = match presented_key(request) {
        None | Some("") if !required => {
            return Ok(TenantScope {
                explicit: header,
                authenticated: false,
            })
        }
        other => other
            .filter(|k| !k.is_empty() && k.len() <= MAX_SECRET_LEN)
            .ok_or(ApiError::Unauthorized)?,
    };
    let Some(key) = stored_key(app, presented).await? else {
        warn!(endpoint, "unknown API key");
        return Err(ApiError::Unauthorized);
    };
    if key.has_expired(app.clock.now()) {
        warn!(api_key_id = %key.id, "expired API key");
        return Err(ApiError::Unauthorized);
    }
    if access == Access::UnrestrictedKey && !key.is_unrestricted() {
        warn!(api_key_id = %key.id, endpoint, "a limited API key may not manage keys");
        return Err(ApiError::Unauthorized);
    }
    if !key.permits(endpoint, request.method.as_str()) {
        warn!(api_key_id = %key.id, endpoint, "API key not permitted for this endpoint");
        return Err(ApiError::Unauthorized);
    }
    match (key.tenant_id, header) {
        (Some(locked), Some(asked)) if locked != asked => {
            warn!(api_key_id = %key.id, "API key locked to another tenant");
            Err(ApiError::Unauthorized)
        }
        (locked, asked) => Ok(TenantScope {
            explicit: asked.or(locked),
            authenticated: true,
        }),
    }
}

/// Whether a request to a public route carries a live API key permitted for `endpoint`. There a
/// key grants nothing and a missing or unknown one is no error; it tells only that the caller
/// is a key holder's server, which limits its own callers, rather than an anonymous source
/// (S33).
pub(crate) async fn holds_key(app: &App, request: &HttpRequest, endpoint: &str) -> bool {
    let Some(presented) =
        presented_key(request).filter(|k| !k.is_empty() && k.len() <= MAX_SECRET_LEN)
    else {
        return false;
    };
    match stored_key(app, presented).await {
        Ok(Some(key)) => {
            !key.has_expired(app.clock.now()) && key.permits(endpoint, request.method.as_str())
        }
        _ => false,
    }
}

/// The `Authorization` header's key, trimmed.
fn presented_key(request: &HttpRequest) -> Option<&str> {
    request
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The stored key a presented one names, compared by hash (S3); expiry and permissions are the
/// caller's to judge.
async fn stored_key(app: &App, presented: &str) -> Result<Option<ApiKey>, ApiError> {
    let hash = Secret::new(presented).hash();
    let key = app
        .store
        .api_key(&hash)
        .await
        .map_err(|e| ApiError::Internal(super::errors::Internal::caused_by(e)))?;
    Ok(key.filter(|k| k.key_hash.matches(&hash)))
}
