//! The SES v2 mailer against moto on loopback, read back through moto's own API.

use crate::support;
use serde_json::{json, Value};
use std::sync::Arc;

use passwordless::adapters::sesv2::SesMailer;
use passwordless::adapters::sqlite::SqliteStore;
use passwordless::domain::email::OutgoingEmail;
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
    // moto dumps its whole state for this and answers 500 when a parallel test changes it
    // mid-dump: try again.
    let mut data = Value::Null;
    for attempt in 1..=20u64 {
        let response = reqwest::get(format!("{}/moto-api/data.json", endpoint()))
            .await
            .unwrap();
        if response.status().is_success() {
            data = response.json().await.unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
    }
    assert!(!data.is_null(), "moto's data.json kept failing");
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
    let receipt = mailer
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
    // The id SES answered is the one it keeps: the send event logs it for bounce tracing.
    assert!(!receipt.message_id.is_empty());
    assert_eq!(sent[0]["id"], receipt.message_id.as_str());
    assert!(sent[0]["source"].as_str().unwrap().contains(&from));
    assert_eq!(sent[0]["subject"], "Your login link");
    assert!(sent[0]["body"]
        .as_str()
        .unwrap()
        .contains("https://login.example/oauth2/passwordless/abc"));
}

#[tokio::test]
async fn an_unverified_sender_is_a_clear_rejection_that_names_no_address() {
    let mailer = SesMailer::new(client().await, Some("no-such-set".into()));
    let (from, to) = (unique("unverified"), unique("reader"));
    let err = mailer
        .send(&OutgoingEmail {
            from_email: from.clone(),
            from_name: None,
            to_email: to.clone(),
            to_name: None,
            subject: "s".into(),
            html: "<p>h</p>".into(),
            text: "t".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MailError::Rejected(_)), "{err}");
    // L2 (S12): the error, which is logged, carries SES's code and request id, not its text.
    let logged = err.to_string();
    assert!(logged.contains("MessageRejected"), "{logged}");
    assert!(
        !logged.contains('@') && !logged.contains(&from) && !logged.contains(&to),
        "{logged}"
    );
}

#[tokio::test]
async fn s23_a_code_whose_send_failed_can_be_sent_again_and_still_logs_in() {
    let client = client().await;
    let from = unique("late-verified");
    let app = support::app_on(
        Arc::new(SqliteStore::in_memory().unwrap()),
        Arc::new(SesMailer::new(client.clone(), None)),
    )
    .await;
    let reader = unique("reader");
    let application = support::seed(&app, &reader).await;
    let scope = passwordless::flows::tenancy::TenantScope::operator();
    let tenant_id = passwordless::domain::tenant::DEFAULT_TENANT_ID;
    let mut tenant = passwordless::flows::management::tenant(app.store.as_ref(), &scope, tenant_id)
        .await
        .unwrap();
    tenant.email_configuration.default_from_email = Some(from.clone());
    passwordless::flows::management::update_tenant(
        app.store.as_ref(),
        app.clock.as_ref(),
        &scope,
        tenant_id,
        tenant,
    )
    .await
    .unwrap();
    let code = support::start(&app, application, &reader).await;

    // The sender is not verified yet: SES refuses, the caller sees a clean 500, nothing is sent.
    let (status, body) = support::call(
        &app,
        support::post("/api/passwordless/send", false, json!({"code": code})),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(body["generalErrors"][0]["code"], "[Exception]");
    assert!(
        !body.to_string().contains("MessageRejected"),
        "no internal detail reaches the caller"
    );
    assert!(sent_to(&reader).await.is_empty());

    verify(&client, &from).await;
    let (status, _) = support::call(
        &app,
        support::post("/api/passwordless/send", false, json!({"code": code})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sent_to(&reader).await.len(), 1);
    let (status, _) = support::call(
        &app,
        support::post("/api/passwordless/login", false, json!({"code": code})),
    )
    .await;
    assert_eq!(status, 200);
}

/// The functions that mail ask SES about their sending identity during init (which opens the
/// connection before the first send): a verified one can send, an unknown one is an error.
#[tokio::test]
async fn the_sending_identity_is_looked_up_before_the_first_send() {
    let client = client().await;
    let domain = format!("{}.example", uuid::Uuid::new_v4().simple());
    let mailer = SesMailer::new(client.clone(), None);
    assert!(
        mailer.identity_can_send(&domain).await.is_err(),
        "not created yet"
    );
    verify(&client, &domain).await;
    assert!(mailer.identity_can_send(&domain).await.unwrap());
}
