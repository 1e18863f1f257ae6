//! How a Lambda function is wired during init, by what its routes need (`App::for_lambda`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use passwordless::app::App;
use passwordless::config::Config;
use passwordless::domain::tenant::DEFAULT_TENANT_ID;
use passwordless::domain::{KeyId, SigningAlgorithm};
use passwordless::http::routes::functions::{
    PasswordlessLogin, PasswordlessSend, PasswordlessStart,
};
use passwordless::http::routes::RouteSet;
use std::path::Path;

/// A deployment's settings on an embedded store (which the debug build's Lambda loop opens).
fn config(dir: &Path) -> Config {
    let store = format!("sqlite:{}", dir.join("store.db").display());
    let outbox = dir.join("outbox").display().to_string();
    let key = STANDARD.encode([7u8; 32]);
    Config::from_lookup(|name| match name {
        "PASSWORDLESS_STORE" => Some(store.clone()),
        "PASSWORDLESS_MAILER" => Some("outbox".into()),
        "PASSWORDLESS_OUTBOX" => Some(outbox.clone()),
        "PASSWORDLESS_KEY_ENCRYPTION_KEY" => Some(key.clone()),
        _ => None,
    })
    .unwrap()
}

async fn init<S: RouteSet>(dir: &Path) -> App {
    App::for_lambda::<S>(&config(dir))
        .await
        .unwrap_or_else(|e| panic!("{:?} failed its init: {e}", S::FUNCTION))
}

/// On a fresh stack the first invocation may reach any function. One that signs nothing holds
/// no vault and could not seal the default tenant's key: it starts, makes nothing, and leaves
/// the making to the first function that signs.
#[tokio::test]
async fn a_function_that_signs_nothing_starts_on_an_empty_store_and_makes_no_tenant() {
    let dir = tempfile::tempdir().unwrap();
    for app in [
        init::<PasswordlessStart>(dir.path()).await,
        init::<PasswordlessSend>(dir.path()).await,
    ] {
        assert_eq!(app.store.tenant(DEFAULT_TENANT_ID).await.unwrap(), None);
        assert!(app.store.signing_keys().await.unwrap().is_empty());
        assert!(
            app.key_maker
                .generate(
                    KeyId::from_random_bytes([3; 16]),
                    SigningAlgorithm::Es256,
                    None
                )
                .is_err(),
            "a function without a vault makes no keys"
        );
    }

    let login = init::<PasswordlessLogin>(dir.path()).await;
    let tenant = login.store.tenant(DEFAULT_TENANT_ID).await.unwrap();
    let tenant = tenant.expect("the first function that signs makes the default tenant");
    let keys = login.store.signing_keys().await.unwrap();
    assert!(keys
        .iter()
        .any(|k| Some(k.id) == tenant.jwt_configuration.access_token_key_id));

    // The next cold start of the start function serves the tenant the login function made.
    let start = init::<PasswordlessStart>(dir.path()).await;
    assert_eq!(
        start.store.tenant(DEFAULT_TENANT_ID).await.unwrap(),
        Some(tenant)
    );
}
