//! The demo a fresh local server seeds when no kickstart file is given: an application with
//! passwordless enabled, one registered user and an unrestricted API key.

use serde_json::{json, Value};
use std::path::Path;

use passwordless::domain::{ApplicationId, Secret};
use passwordless::flows::management::{
    create_api_key, create_application, register, RegisterCommand,
};
use passwordless::flows::tenancy::TenantScope;
use passwordless::flows::FlowError;
use passwordless::App;

pub const DEMO_APPLICATION_ID: ApplicationId =
    ApplicationId::from_uuid(uuid::uuid!("7d3f0b9e-2c4a-4e61-8f15-a2b3c4d5e6f7"));
pub const DEMO_LOGIN_ID: &str = "demo@example.com";

pub struct Demo {
    pub application_id: ApplicationId,
    pub login_id: &'static str,
    pub api_key: Secret,
}

/// The demo's objects are written as the JSON an operator would send, read into the domain's
/// types like any request.
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, FlowError> {
    serde_json::from_value(value).map_err(|e| FlowError::Internal(format!("demo object: {e}")))
}

/// Seeds the demo and returns what a user needs to try it.
pub async fn seed(app: &App) -> Result<Demo, FlowError> {
    let scope = TenantScope::operator();
    let store = app.store.as_ref();
    // The local server's demo relying party (`/demo/`) is a public client: PKCE, no secret.
    let callback = format!("{}/demo/callback", app.links.0.trim_end_matches('/'));
    let application = typed(json!({
        "name": "Demo",
        "passwordlessConfiguration": {"enabled": true},
        "oauthConfiguration": {
            "authorizedRedirectURLs": [callback],
            "clientAuthenticationPolicy": "NotRequiredWhenUsingPKCE",
            "proofKeyForCodeExchangePolicy": "Required"
        },
        "roles": [{"name": "user", "isDefault": true}],
        "loginConfiguration": {"generateRefreshTokens": true},
        "jwtConfiguration": {"enabled": true, "timeToLiveInSeconds": 3600}
    }))?;
    create_application(
        store,
        app.clock.as_ref(),
        app.entropy.as_ref(),
        &scope,
        Some(DEMO_APPLICATION_ID),
        application,
    )
    .await?;
    let registration = RegisterCommand {
        user: Some(typed(
            json!({"email": DEMO_LOGIN_ID, "firstName": "Demo", "preferredLanguages": ["en"]}),
        )?),
        registration: typed(json!({"applicationId": DEMO_APPLICATION_ID}))?,
        skip_verification: false,
        skip_registration_verification: false,
    };
    register(&app.verification_ports(), &scope, None, registration).await?;
    let mut key_bytes = [0u8; 24];
    app.entropy.fill(&mut key_bytes)?;
    let api_key = Secret::new(
        key_bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    );
    create_api_key(
        store,
        app.entropy.as_ref(),
        app.clock.as_ref(),
        &api_key,
        "Demo key (no limits)",
        None,
        None,
        passwordless::http::routes::is_permissible,
    )
    .await?;
    Ok(Demo {
        application_id: DEMO_APPLICATION_ID,
        login_id: DEMO_LOGIN_ID,
        api_key,
    })
}

/// Writes the demo's settings as shell exports, readable only by the owner: the key is shown
/// once and is not recoverable from the store, which keeps only its hash.
pub fn write_env_file(path: &Path, demo: &Demo, base_url: &str) -> std::io::Result<()> {
    let text = format!(
        "export PASSWORDLESS_URL={base_url}\nexport PASSWORDLESS_API_KEY={}\nexport PASSWORDLESS_APPLICATION_ID={}\nexport PASSWORDLESS_LOGIN_ID={}\n",
        demo.api_key.expose(),
        demo.application_id,
        demo.login_id
    );
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        passwordless::adapters::files::create_private_dir(parent)?;
    }
    // Owner-only from its first byte: the key is in it (S26).
    passwordless::adapters::files::write_private(path, text.as_bytes())
}
