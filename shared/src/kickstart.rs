//! FusionAuth-style kickstart files: variables, API keys, and management requests run in order
//! through the real handlers. Applied once, to a store that holds nothing yet.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

use crate::app::App;
use crate::domain::tenant::DEFAULT_TENANT_ID;
use crate::domain::{ApiKeyPermissions, Secret, TenantId};
use crate::flows::management::create_api_key;
use crate::http::routes::AllRoutes;
use crate::http::{handle_as, Caller, HttpRequest};
use crate::ports::KickstartMark;

#[derive(Debug, thiserror::Error)]
pub enum KickstartError {
    #[error("the kickstart file is not valid: {0}")]
    Malformed(String),
    #[error("kickstart variable {0} is not defined")]
    UnknownVariable(String),
    #[error("environment variable {0} is not set, or not one a kickstart file may read (names starting with KICKSTART_, or those PASSWORDLESS_KICKSTART_ENV lists)")]
    MissingEnv(String),
    #[error("apiKeys[{index}] failed: {message}")]
    ApiKey { index: usize, message: String },
    #[error("requests[{index}] ({method} {url}) failed with {status}: {body}")]
    Request {
        index: usize,
        method: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("the store could not be read: {0}")]
    Store(String),
    #[error("an earlier kickstart stopped half way: the store is incomplete; start again from an empty store")]
    Incomplete,
}

/// The shortest API key a kickstart file may define (S30): a short key written into a file is
/// guessable, and one copied from an example is public.
pub(crate) const MIN_KICKSTART_KEY_LEN: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KickstartFile {
    #[serde(default)]
    variables: Map<String, Value>,
    #[serde(default)]
    api_keys: Vec<Value>,
    #[serde(default)]
    requests: Vec<Value>,
}

/// Unknown fields are refused (S28): a misspelt `permissions` must stop kickstart, not make a
/// key with no limits.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApiKeyEntry {
    key: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Option<ApiKeyPermissions>,
    #[serde(default)]
    tenant_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestEntry {
    method: String,
    url: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    body: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KickstartOutcome {
    Applied {
        api_keys: usize,
        requests: usize,
    },
    /// The store already held data: kickstart runs once, never over existing data.
    Skipped,
}

struct Substitution<'a> {
    variables: HashMap<String, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Substitution<'_> {
    /// Replaces every `#{…}` in `text`.
    fn apply(&self, text: &str) -> Result<String, KickstartError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("#{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            out.push_str(&self.resolve(&after[..end])?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve(&self, name: &str) -> Result<String, KickstartError> {
        if name == "UUID()" {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|e| KickstartError::Malformed(e.to_string()))?;
            return Ok(uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .to_string());
        }
        if let Some(env_name) = name.strip_prefix("ENV.") {
            return (self.env)(env_name)
                .ok_or_else(|| KickstartError::MissingEnv(env_name.to_owned()));
        }
        self.variables
            .get(name)
            .cloned()
            .ok_or_else(|| KickstartError::UnknownVariable(name.to_owned()))
    }

    fn apply_value(&self, value: Value) -> Result<Value, KickstartError> {
        Ok(match value {
            Value::String(s) => Value::String(self.apply(&s)?),
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| self.apply_value(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| Ok((self.apply(&k)?, self.apply_value(v)?)))
                    .collect::<Result<_, KickstartError>>()?,
            ),
            other => other,
        })
    }
}

/// Applies a kickstart file if the store holds nothing but its default tenant.
pub async fn apply_if_pristine(
    app: &App,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KickstartOutcome, KickstartError> {
    let store_error = |e: crate::ports::StoreError| KickstartError::Store(e.to_string());
    match app.store.kickstart_mark().await.map_err(store_error)? {
        Some(KickstartMark::Started) => return Err(KickstartError::Incomplete),
        Some(KickstartMark::Completed) => return Ok(KickstartOutcome::Skipped),
        None => {}
    }
    if !app.store.is_pristine().await.map_err(store_error)? {
        return Ok(KickstartOutcome::Skipped);
    }
    // Marked before the first write and completed after the last: a kickstart that stops half
    // way leaves a mark every later start sees, and the store is not served (L5).
    app.store
        .set_kickstart_mark(KickstartMark::Started)
        .await
        .map_err(store_error)?;
    let outcome = apply(app, text, env).await?;
    app.store
        .set_kickstart_mark(KickstartMark::Completed)
        .await
        .map_err(store_error)?;
    Ok(outcome)
}

/// Applies a kickstart file: variables first, then API keys, then each request in order. The
/// first failing request stops it, naming the request's index and the error body.
pub async fn apply(
    app: &App,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KickstartOutcome, KickstartError> {
    let file: KickstartFile =
        serde_json::from_str(text).map_err(|e| KickstartError::Malformed(e.to_string()))?;
    let mut substitution = Substitution {
        variables: HashMap::new(),
        env,
    };
    substitution
        .variables
        .insert("FUSIONAUTH_TENANT_ID".into(), DEFAULT_TENANT_ID.to_string());
    for (name, value) in file.variables {
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let resolved = substitution.apply(&text)?;
        substitution.variables.insert(name, resolved);
    }

    let api_key_count = file.api_keys.len();
    for (index, entry) in file.api_keys.into_iter().enumerate() {
        let entry: ApiKeyEntry =
            serde_json::from_value(substitution.apply_value(entry)?).map_err(|e| {
                KickstartError::ApiKey {
                    index,
                    message: e.to_string(),
                }
            })?;
        make_api_key(app, index, entry).await?;
    }
    let request_count = file.requests.len();
    for (index, entry) in file.requests.into_iter().enumerate() {
        let entry: RequestEntry = serde_json::from_value(substitution.apply_value(entry)?)
            .map_err(|e| KickstartError::Malformed(format!("requests[{index}]: {e}")))?;
        send_request(app, index, entry).await?;
    }
    Ok(KickstartOutcome::Applied {
        api_keys: api_key_count,
        requests: request_count,
    })
}

/// The kickstart file's API key `index`, made with the key the file gives (from the
/// environment, and long enough to be one).
async fn make_api_key(app: &App, index: usize, entry: ApiKeyEntry) -> Result<(), KickstartError> {
    if entry.key.chars().count() < MIN_KICKSTART_KEY_LEN {
        return Err(KickstartError::ApiKey {
                index,
                message: format!(
                    "the key is shorter than {MIN_KICKSTART_KEY_LEN} characters; take it from the environment (#{{ENV.NAME}}) and make it with `openssl rand -hex 24`"
                ),
            });
    }
    let tenant = entry
        .tenant_id
        .map(|t| {
            TenantId::parse(&t).ok_or_else(|| KickstartError::ApiKey {
                index,
                message: "tenantId is not a UUID".into(),
            })
        })
        .transpose()?;
    create_api_key(
        app.store.as_ref(),
        app.entropy.as_ref(),
        app.clock.as_ref(),
        &Secret::new(entry.key),
        &entry.description,
        entry.permissions,
        tenant,
        crate::http::routes::is_permissible,
    )
    .await
    .map_err(|e| KickstartError::ApiKey {
        index,
        message: e.to_string(),
    })?;
    Ok(())
}

/// The kickstart file's request `index`, answered by the route table as a caller with every
/// right; anything but a success stops the file.
async fn send_request(app: &App, index: usize, entry: RequestEntry) -> Result<(), KickstartError> {
    let failed = |status: u16, body: String| KickstartError::Request {
        index,
        method: entry.method.clone(),
        url: entry.url.clone(),
        status,
        body,
    };
    let method = Method::from_bytes(entry.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| failed(0, "unknown method".into()))?;
    let (path, query) = match entry.url.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (entry.url.clone(), None),
    };
    let mut headers = HeaderMap::new();
    if let Some(tenant) = &entry.tenant_id {
        let value = HeaderValue::from_str(tenant)
            .map_err(|_| failed(0, "tenantId is not a header value".into()))?;
        headers.insert(crate::http::auth::TENANT_HEADER, value);
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = entry
        .body
        .as_ref()
        .map(Value::to_string)
        .unwrap_or_default();
    let request = HttpRequest {
        method,
        path,
        query,
        headers,
        body: Bytes::from(body),
        source_ip: None,
        request_id: format!("kickstart-{index}"),
    };
    let response = handle_as::<AllRoutes>(app, request, Caller::Kickstart).await;
    if !response.status().is_success() {
        let status = response.status().as_u16();
        return Err(failed(
            status,
            String::from_utf8_lossy(response.body()).into_owned(),
        ));
    }
    Ok(())
}

/// Which environment variables a kickstart file may read through `#{ENV.NAME}` (N20): by
/// default those whose names start with `KICKSTART_`, so that a kickstart file (often from a
/// repository) cannot copy the server's own settings or cloud credentials into data an API
/// key can read. `PASSWORDLESS_KICKSTART_ENV` replaces the default with a comma-separated list
/// of names, where `NAME_*` stands for every name with that prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KickstartEnv {
    names: Vec<String>,
    prefixes: Vec<String>,
}

impl KickstartEnv {
    pub(crate) const DEFAULT_PREFIX: &'static str = "KICKSTART_";

    /// From the setting's value: `None` (or blank) is the default.
    pub fn from_setting(setting: Option<&str>) -> Self {
        let entries: Vec<&str> = setting
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Self {
                names: Vec::new(),
                prefixes: vec![Self::DEFAULT_PREFIX.to_owned()],
            };
        }
        let (prefixes, names): (Vec<&str>, Vec<&str>) =
            entries.into_iter().partition(|e| e.ends_with('*'));
        Self {
            names: names.into_iter().map(str::to_owned).collect(),
            prefixes: prefixes
                .into_iter()
                .map(|p| p.trim_end_matches('*').to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }

    pub fn allows(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name) || self.prefixes.iter().any(|p| name.starts_with(p))
    }
}

#[cfg(test)]
mod env_tests {
    use super::KickstartEnv;

    #[test]
    fn n20_a_kickstart_reads_only_the_variables_the_operator_allows() {
        let default = KickstartEnv::from_setting(None);
        assert!(default.allows("KICKSTART_API_KEY"));
        for secret in [
            "AWS_SECRET_ACCESS_KEY",
            "PASSWORDLESS_VAULT_KEY",
            "HOME",
            "KICKSTART",
        ] {
            assert!(!default.allows(secret), "{secret}");
        }
        assert_eq!(KickstartEnv::from_setting(Some(" ")), default);
        let listed = KickstartEnv::from_setting(Some("APP_KEY, BILLING_*"));
        assert!(listed.allows("APP_KEY") && listed.allows("BILLING_HMAC_SECRET"));
        assert!(!listed.allows("APP_KEY_2") && !listed.allows("KICKSTART_API_KEY"));
        // A lone `*` names no prefix: it does not open every variable.
        assert!(!KickstartEnv::from_setting(Some("*")).allows("AWS_SECRET_ACCESS_KEY"));
    }
}
