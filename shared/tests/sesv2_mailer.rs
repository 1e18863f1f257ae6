//! The SES v2 mailer against moto on loopback, read back through moto's own API.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

use serde_json::{json, Value};
use std::sync::Arc;

use passwordless::adapters::clock::SystemClock;
use passwordless::adapters::entropy::OsEntropy;
use passwordless::adapters::keys::AwsLcKeyMaker;
use passwordless::adapters::sesv2::SesMailer;
use passwordless::adapters::sqlite::SqliteStore;
use passwordless::app::{App, AppParts};
use passwordless::domain::email::OutgoingEmail;
use passwordless::domain::Secret;
use passwordless::flows::management::{create_api_key, create_application, register};
use passwordless::flows::tenancy::TenantScope;
use passwordless::ports::{MailError, Mailer};

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL must point at the SES emulator: run `bash scripts/test.sh`, which starts one")
}

async fn client() -> aws_sdk_sesv2::Client {
    endpoint();
    aws_sdk_sesv2::Client::new(&aws_config::load_from_env().await)
}

async fn verify(client: &aws_sdk_sesv2::Client, identity: &str) {
    client
        .create_email_identity()
        .email_identity(identity)
        .send()
        .await
        .unwrap();
}

/// The messages moto accepted for `recipient` (moto keeps the HTML part when both are sent).
async fn sent_to(recipient: &str) -> Vec<Value> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut found = Vec::new();
    for message in data["ses"]["Message"].as_array().into_iter().flatten() {
        let to = message["destinations"]["ToAddresses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if to
            .iter()
            .any(|a| a.as_str().is_some_and(|a| a.contains(recipient)))
        {
            found.push(message.clone());
        }
    }
    found
}

fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{}@sestest.example",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

#[tokio::test]
async fn a_message_goes_out_with_sender_recipient_subject_and_body() {
    let client = client().await;
    let (from, to) = (unique("sender"), unique("reader"));
    verify(&client, &from).await;
    let mailer = SesMailer::new(client, None);
    mailer
        .send(&OutgoingEmail {
            from_email: from.clone(),
            from_name: Some("Pied Piper".into()),
            to_email: to.clone(),
            to_name: Some("Jared Dunn".into()),
            subject: "Your login link".into(),
            html: "<p><a href=\"https://login.example/oauth2/passwordless/abc\">Log in</a></p>"
                .into(),
            text: "Log in: https://login.example/oauth2/passwordless/abc".into(),
        })
        .await
        .unwrap();
    let sent = sent_to(&to).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0]["source"].as_str().unwrap().contains(&from));
    assert_eq!(sent[0]["subject"], "Your login link");
    assert!(sent[0]["body"]
        .as_str()
        .unwrap()
        .contains("https://login.example/oauth2/passwordless/abc"));
}

#[tokio::test]
async fn an_unverified_sender_is_a_clear_rejection() {
    let mailer = SesMailer::new(client().await, Some("no-such-set".into()));
    let err = mailer
        .send(&OutgoingEmail {
            from_email: unique("unverified"),
            from_name: None,
            to_email: unique("reader"),
            to_name: None,
            subject: "s".into(),
            html: "<p>h</p>".into(),
            text: "t".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Rejected(_)), "{err}");
}

#[tokio::test]
async fn s23_a_code_whose_send_failed_can_be_sent_again_and_still_logs_in() {
    let client = client().await;
    let from = unique("late-verified");
    let app = App::from_parts(AppParts {
        store: Arc::new(SqliteStore::in_memory().unwrap()),
        mailer: Arc::new(SesMailer::new(client.clone(), None)),
        clock: Arc::new(SystemClock),
        entropy: Arc::new(OsEntropy),
        key_maker: Arc::new(AwsLcKeyMaker),
        public_url: "https://login.example".into(),
    })
    .await
    .unwrap();
    let scope = TenantScope::default();
    let object = |v: Value| v.as_object().cloned().unwrap();
    let template = passwordless::flows::bootstrap::BUILT_IN_TEMPLATE_ID;
    let application = create_application(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        &scope,
        None,
        object(json!({"name": "SES", "passwordlessConfiguration": {"enabled": true}})),
    )
    .await
    .unwrap();
    let patch = object(
        json!({"emailConfiguration": {"defaultFromEmail": from, "passwordlessEmailTemplateId": template}}),
    );
    let tenant = passwordless::domain::tenant::DEFAULT_TENANT_ID;
    passwordless::flows::management::patch_tenant(
        app.store.as_ref(),
        app.clock.as_ref(),
        &scope,
        tenant,
        patch,
    )
    .await
    .unwrap();
    let reader = unique("reader");
    let body = object(
        json!({"user": {"email": reader}, "registration": {"applicationId": application.id}}),
    );
    register(
        app.store.as_ref(),
        app.clock.as_ref(),
        app.entropy.as_ref(),
        &scope,
        None,
        body,
    )
    .await
    .unwrap();
    create_api_key(
        app.store.as_ref(),
        app.entropy.as_ref(),
        &Secret::new("ses-key-1234567890"),
        "k",
        None,
        None,
    )
    .await
    .unwrap();

    let call = |path: &str, key: Option<&str>, body: Value| {
        let mut headers = http::HeaderMap::new();
        if let Some(key) = key {
            headers.insert("authorization", key.parse().unwrap());
        }
        passwordless::http::HttpRequest {
            method: http::Method::POST,
            path: path.to_owned(),
            query: None,
            headers,
            body: bytes::Bytes::from(body.to_string()),
            source_ip: None,
            request_id: "ses-test".into(),
        }
    };
    let started = passwordless::http::handle(
        &app,
        call(
            "/api/passwordless/start",
            Some("ses-key-1234567890"),
            json!({"applicationId": application.id, "loginId": reader}),
        ),
    )
    .await;
    let code: Value = serde_json::from_slice(started.body()).unwrap();
    let code = code["code"].as_str().unwrap().to_owned();

    // The sender is not verified yet: SES refuses, the caller sees a clean 500, nothing is sent.
    let refused = passwordless::http::handle(
        &app,
        call("/api/passwordless/send", None, json!({"code": code})),
    )
    .await;
    assert_eq!(refused.status(), 500);
    let body: Value = serde_json::from_slice(refused.body()).unwrap();
    assert_eq!(body["generalErrors"][0]["code"], "[Exception]");
    assert!(
        !body.to_string().contains("MessageRejected"),
        "no internal detail reaches the caller"
    );
    assert!(sent_to(&reader).await.is_empty());

    verify(&client, &from).await;
    let sent = passwordless::http::handle(
        &app,
        call("/api/passwordless/send", None, json!({"code": code})),
    )
    .await;
    assert_eq!(sent.status(), 200);
    assert_eq!(sent_to(&reader).await.len(), 1);
    let login = passwordless::http::handle(
        &app,
        call("/api/passwordless/login", None, json!({"code": code})),
    )
    .await;
    assert_eq!(login.status(), 200);
}
