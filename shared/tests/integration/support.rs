//! Set-up shared by the adapter tests that drive whole flows: an `App` on a given store and
//! mailer, one passwordless application with one registered user, and requests to the handler.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::sync::Arc;

use passwordless::adapters::clock::SystemClock;
use passwordless::adapters::entropy::OsEntropy;
use passwordless::adapters::keys::AwsLcKeyMaker;
use passwordless::app::{App, AppParts};
use passwordless::domain::{ApplicationId, Secret};
use passwordless::flows::management::{
    create_api_key, create_application, register, RegisterCommand,
};
use passwordless::flows::tenancy::TenantScope;
use passwordless::http::{handle, HttpRequest};
use passwordless::ports::{Mailer, Store};

pub const KEY: &str = "adapter-test-key-1234567890";

/// A vault with a fixed key: what it seals is opaque to the store and opens only here.
pub fn test_vault() -> passwordless::adapters::vault::LocalKeyVault {
    passwordless::adapters::vault::LocalKeyVault::from_base64(
        "dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM=",
    )
    .unwrap()
}

pub async fn app_on(store: Arc<dyn Store>, mailer: Arc<dyn Mailer>) -> App {
    App::from_parts(AppParts {
        store,
        key_vault: Arc::new(test_vault()),
        mailer,
        clock: Arc::new(SystemClock),
        entropy: Arc::new(OsEntropy),
        key_maker: Arc::new(AwsLcKeyMaker),
        public_url: "https://login.example".into(),
    })
    .await
    .unwrap()
}

fn typed<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// An application with passwordless enabled, `email` registered for it, and the key [`KEY`].
pub async fn seed(app: &App, email: &str) -> ApplicationId {
    let scope = TenantScope::operator();
    let (store, clock, entropy) = (app.store.as_ref(), app.clock.as_ref(), app.entropy.as_ref());
    let application = typed(
        json!({"name": "Adapter test", "passwordlessConfiguration": {"enabled": true}, "roles": [{"name": "user"}]}),
    );
    let application = create_application(store, clock, entropy, &scope, None, application)
        .await
        .unwrap();
    let command = RegisterCommand {
        user: Some(typed(json!({"email": email}))),
        registration: typed(json!({"applicationId": application.id, "roles": ["user"]})),
        skip_verification: false,
        skip_registration_verification: false,
    };
    register(&app.verification_ports(), &scope, None, command)
        .await
        .unwrap();
    create_api_key(
        store,
        entropy,
        clock,
        &Secret::new(KEY),
        "adapter tests",
        None,
        None,
        passwordless::http::routes::is_permissible,
    )
    .await
    .unwrap();
    application.id
}

/// A JSON POST, with the key when `with_key`.
pub fn post(path: &str, with_key: bool, body: Value) -> HttpRequest {
    let mut headers = http::HeaderMap::new();
    if with_key {
        headers.insert("authorization", http::HeaderValue::from_static(KEY));
    }
    HttpRequest {
        method: http::Method::POST,
        path: path.to_owned(),
        query: None,
        headers,
        body: bytes::Bytes::from(body.to_string()),
        source_ip: None,
        request_id: "adapter-test".into(),
    }
}

/// Answers a request and returns the status and the JSON body (null when empty).
pub async fn call(app: &App, request: HttpRequest) -> (u16, Value) {
    let response = handle(app, request).await;
    let body = if response.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(response.body()).unwrap()
    };
    (response.status().as_u16(), body)
}

/// Starts a login for `email` and returns the code.
pub async fn start(app: &App, application: ApplicationId, email: &str) -> String {
    let (status, body) = call(
        app,
        post(
            "/api/passwordless/start",
            true,
            json!({"applicationId": application, "loginId": email}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["code"].as_str().unwrap().to_owned()
}

/// Every request an AWS SDK client sends, by operation (`x-amz-target`), for counting round
/// trips. The interceptor trait is the smithy runtime's, shared by every service's client.
#[derive(Debug, Default, Clone)]
pub struct RequestLog(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl RequestLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl aws_sdk_dynamodb::config::Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?");
        self.0
            .lock()
            .unwrap()
            .push(target.rsplit('.').next().unwrap_or(target).to_owned());
        Ok(())
    }
}

/// A fresh KMS key on the emulator, by id.
pub async fn kms_key(kms: &aws_sdk_kms::Client) -> String {
    kms.create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned()
}
