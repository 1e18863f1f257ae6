//! S12: no code, token, key, email body or email address reaches the logs; logins are logged
//! as events with the ids that matter.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step is a failed test

// Its own binary: it installs a subscriber, and the other black-box tests must not log into it.
#[path = "black_box/support/mod.rs"]
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

#[tokio::test]
async fn s12_two_factor_secrets_codes_and_ids_stay_out_of_the_logs_and_events_name_the_method() {
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
    let app = server.application(json!({})).await;
    let user = server
        .user(&app, "second.factor@example.com", json!({}))
        .await;
    let secret = server
        .get("/api/two-factor/secret", Some(ADMIN_KEY))
        .await
        .json();
    let parsed = passwordless::domain::two_factor::AuthenticatorSecret::from_base64(
        secret["secret"].as_str().unwrap(),
    )
    .unwrap();
    let enabling_code = parsed.code_at(server.clock_now());
    let enabled = server
        .admin(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            json!({"method": "authenticator", "secret": secret["secret"], "code": enabling_code}),
        )
        .await
        .json();
    let code = server.code(&app, "second.factor@example.com").await;
    let pending = server.login(json!({"code": code})).await.json();
    let step = pending["twoFactorId"].as_str().unwrap();
    server
        .post(
            "/api/two-factor/login",
            None,
            json!({"twoFactorId": step, "code": "RECOV-ERY00"}),
        )
        .await
        .assert_status(421);
    let second_code = parsed.code_at(server.clock_now().plus_secs(30));
    let done = server
        .post(
            "/api/two-factor/login",
            None,
            json!({"twoFactorId": step, "code": second_code, "trustComputer": true}),
        )
        .await
        .json();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let mut secrets = vec![
        secret["secret"].as_str().unwrap().to_owned(),
        secret["secretBase32Encoded"].as_str().unwrap().to_owned(),
        step.to_owned(),
        done["twoFactorTrustId"].as_str().unwrap().to_owned(),
        done["token"].as_str().unwrap().to_owned(),
        enabling_code,
        second_code,
        "RECOV-ERY00".to_owned(),
    ];
    for recovery in enabled["recoveryCodes"].as_array().unwrap() {
        secrets.push(recovery.as_str().unwrap().to_owned());
    }
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "the logs contain {secret:?}"
        );
    }
    let added = logs
        .lines()
        .find(|l| l.contains("user.two-factor.method.add"))
        .expect("an event for the new method");
    assert!(
        added.contains(&user) && added.contains("authenticator"),
        "{added}"
    );
    let success = logs
        .lines()
        .find(|l| l.contains("user.login.success"))
        .expect("a login success event");
    assert!(
        success.contains("\"two_factor\":\"authenticator\""),
        "the success event names the method used: {success}"
    );
    assert!(
        logs.contains("wrong two-factor code"),
        "the failure is logged"
    );
}
