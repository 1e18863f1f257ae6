//! S12: no code, token, key, email body or email address reaches the logs; logins are logged
//! as events with the ids that matter.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

mod support;

use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn s12_no_secret_or_address_is_logged_and_logins_are_logged_as_events() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,passwordless=trace,passwordless_cli=trace",
        ))
        .with_writer(captured.clone())
        .with_ansi(false)
        .json()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    let user = server
        .user(
            &app,
            "secret.person@example.com",
            json!({"firstName": "Confidential"}),
        )
        .await;
    let patch = json!({"tenant": {"externalIdentifierConfiguration": {"passwordlessLoginOneTimeCodeGenerator": {"type": "randomAlpha", "length": 12}}}});
    server.patch_default_tenant(patch).await;

    let started = server
        .start_login(
            &app,
            "secret.person@example.com",
            json!({"loginStrategy": "FormField", "state": {"s": "private-state"}}),
        )
        .await
        .json();
    server
        .send(json!({"code": started["code"]}))
        .await
        .assert_status(200);
    server
        .login(json!({"code": started["code"], "oneTimeCode": "WRONGWRONGXX"}))
        .await
        .assert_error_code("[invalid]oneTimeCode");
    let done = server.login(json!({"code": started["code"], "oneTimeCode": started["oneTimeCode"], "ipAddress": "203.0.113.9"})).await.json();
    server
        .post(
            "/api/passwordless/start",
            Some("a-wrong-key-that-must-not-be-logged"),
            json!({}),
        )
        .await
        .assert_status(401);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    for secret in [
        started["code"].as_str().unwrap(),
        started["oneTimeCode"].as_str().unwrap(),
        done["token"].as_str().unwrap(),
        done["refreshToken"].as_str().unwrap(),
        ADMIN_KEY,
        "a-wrong-key-that-must-not-be-logged",
        "secret.person@example.com",
        "Confidential",
        "private-state",
        "WRONGWRONGXX",
    ] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
    }
    let success = logs
        .lines()
        .find(|l| l.contains("user.login.success"))
        .expect("a login success event");
    for field in [
        user.as_str(),
        app.as_str(),
        &server.default_tenant(),
        "203.0.113.9",
        "PASSWORDLESS",
    ] {
        assert!(
            success.contains(field),
            "the success event names {field}: {success}"
        );
    }
    assert!(
        logs.contains("user.login.failed"),
        "a failed attempt is logged"
    );
    assert!(logs.contains("request_id"), "requests carry their id");
}
