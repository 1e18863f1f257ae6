//! The first outside audit's findings (H1–H3, M1–M6, L1–L5, X7) and the rules it added
//! (S25–S31), each as the behaviour that must hold now. Runs on SQLite with the outbox and,
//! with `PASSWORDLESS_TEST_BACKEND=aws`, on DynamoDB with SES.

use crate::support::*;
use serde_json::{json, Value};

use passwordless::kickstart::{apply, apply_if_pristine, KickstartError};

const SEND_KEY: &str = "send-permitted-key-0123456789abcdef";
const HOOLI_KEY: &str = "hooli-locked-key-0123456789abcdef";

async fn key_id_of_tenant(server: &TestServer, tenant: &str) -> String {
    server.get_tenant(tenant).await["jwtConfiguration"]["accessTokenKeyId"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn as_key(server: &TestServer, method: &str, path: &str, key: &str, body: Value) -> Response {
    server
        .request(
            method,
            path,
            Some(key),
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

// H1, S30 -------------------------------------------------------------------------------------

#[tokio::test]
async fn h1_s30_the_example_kickstart_holds_no_key_and_kickstart_refuses_short_literal_keys() {
    let sample: Value =
        serde_json::from_str(include_str!("../../../examples/kickstart.json")).unwrap();
    let variables = sample["variables"].as_object().unwrap();
    for entry in sample["apiKeys"].as_array().unwrap() {
        let key = entry["key"].as_str().unwrap();
        // Either `#{ENV.…}` itself or a variable that is one.
        let resolved = key
            .strip_prefix("#{")
            .and_then(|rest| rest.strip_suffix('}'))
            .map(|name| match name.strip_prefix("ENV.") {
                Some(_) => key.to_owned(),
                None => variables[name].as_str().unwrap().to_owned(),
            })
            .unwrap_or_else(|| key.to_owned());
        assert!(resolved.starts_with("#{ENV."), "a literal key ships: {key}");
    }

    let server = TestServer::start().await;
    server.forget_api_keys().await;
    let short = json!({"apiKeys": [{"key": "start-only-4c5d6e7f8a9b0c1d2e3f"}]});
    let err = apply(&server.app, &short.to_string(), &|_| None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, KickstartError::ApiKey { index: 0, message } if message.contains("32")),
        "{err}"
    );
    let from_env = json!({"apiKeys": [{"key": "#{ENV.K}"}]});
    let short_env = |_: &str| Some("too-short".to_owned());
    assert!(matches!(
        apply(&server.app, &from_env.to_string(), &short_env).await,
        Err(KickstartError::ApiKey { index: 0, .. })
    ));
}

// H2, S22 -------------------------------------------------------------------------------------

#[tokio::test]
async fn h2_s22_a_tenant_locked_key_cannot_sign_with_another_tenants_key_or_issuer() {
    let server = TestServer::start().await;
    let hooli = server.tenant("Hooli").await;
    server.api_key(HOOLI_KEY, &[], Some(&hooli)).await;
    let tenant = server.get_tenant(&hooli).await;
    assert_eq!(
        tenant["issuer"],
        format!("{PUBLIC_URL}/{hooli}"),
        "an issuer of its own"
    );
    let default_kid = key_id_of_tenant(&server, &server.default_tenant()).await;
    let hooli_path = format!("/api/tenant/{hooli}");

    let response = as_key(
        &server,
        "PATCH",
        &hooli_path,
        HOOLI_KEY,
        json!({"tenant": {"jwtConfiguration": {"accessTokenKeyId": default_kid}}}),
    )
    .await;
    response.assert_error_code("[invalid]tenant.jwtConfiguration.accessTokenKeyId");
    let response = as_key(
        &server,
        "POST",
        "/api/application",
        HOOLI_KEY,
        json!({"application": {"name": "Sneaky", "jwtConfiguration": {"accessTokenKeyId": default_kid}}}),
    )
    .await;
    response.assert_error_code("[invalid]application.jwtConfiguration.accessTokenKeyId");
    let response = as_key(
        &server,
        "PATCH",
        &hooli_path,
        HOOLI_KEY,
        json!({"tenant": {"issuer": PUBLIC_URL}}),
    )
    .await;
    response.assert_error_code("[duplicate]tenant.issuer");
    // N14: nor one that differs from it only in case, default port or a trailing slash.
    let near = PUBLIC_URL.replace("https://", "HTTPS://").to_owned() + ":443/";
    for issuer in [format!("{PUBLIC_URL}/"), near] {
        as_key(
            &server,
            "PATCH",
            &hooli_path,
            HOOLI_KEY,
            json!({"tenant": {"issuer": issuer}}),
        )
        .await
        .assert_error_code("[duplicate]tenant.issuer");
    }
    // Its own issuer is its own business.
    as_key(
        &server,
        "PATCH",
        &hooli_path,
        HOOLI_KEY,
        json!({"tenant": {"issuer": "https://hooli.example/login"}}),
    )
    .await
    .assert_status(200);

    // Each tenant publishes only its own keys; the global set keeps them all (FusionAuth).
    let hooli_kid = key_id_of_tenant(&server, &hooli).await;
    let own = server
        .get(&format!("/{hooli}/.well-known/jwks.json"), None)
        .await
        .json();
    assert_eq!(kids(&own), vec![hooli_kid.clone()]);
    let default = server
        .get(
            &format!("/{}/.well-known/jwks.json", server.default_tenant()),
            None,
        )
        .await
        .json();
    assert_eq!(kids(&default), vec![default_kid.clone()]);
    let all = kids(&server.get("/.well-known/jwks.json", None).await.json());
    assert!(all.contains(&hooli_kid) && all.contains(&default_kid));
    server
        .get(
            &format!("/{}/.well-known/jwks.json", uuid::Uuid::new_v4()),
            None,
        )
        .await
        .assert_status(404);
}

// H3, S9, S31 ---------------------------------------------------------------------------------

#[tokio::test]
async fn h3_the_send_form_by_address_needs_a_key_permitted_for_send() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    server
        .api_key(
            "start-only-0123456789abcdef0123",
            &[("/api/passwordless/start", &["POST"])],
            None,
        )
        .await;
    server
        .api_key(SEND_KEY, &[("/api/passwordless/send", &["POST"])], None)
        .await;
    let body = json!({"applicationId": app, "loginId": "a@example.com"});
    for key in [
        None,
        Some("wrong-key"),
        Some("start-only-0123456789abcdef0123"),
    ] {
        let response = server
            .post("/api/passwordless/send", key, body.clone())
            .await;
        response.assert_status(401);
    }
    assert!(server.emails().await.is_empty());
    server
        .post("/api/passwordless/send", Some(SEND_KEY), body)
        .await
        .assert_status(200);
    assert_eq!(server.emails().await.len(), 1);
    // The code form still needs no key, as in FusionAuth.
    let code = server.code(&app, "a@example.com").await;
    server.send(json!({"code": code})).await.assert_status(200);
}

#[tokio::test]
async fn h3_s31_limits_count_before_anything_is_written_and_answer_alike_for_unknown_addresses() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    server
        .api_key(SEND_KEY, &[("/api/passwordless/send", &["POST"])], None)
        .await;
    for login_id in ["a@example.com", "nobody@example.com"] {
        let body = json!({"applicationId": app, "loginId": login_id});
        let statuses: Vec<u16> = {
            let mut statuses = Vec::new();
            for _ in 0..6 {
                let response = server
                    .post("/api/passwordless/send", Some(SEND_KEY), body.clone())
                    .await;
                statuses.push(response.status.as_u16());
                if response.status == 200 {
                    assert!(response.text.is_empty());
                }
            }
            statuses
        };
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429], "{login_id}");
    }
    // The refused send wrote nothing: the link of the fifth still logs in.
    let emails = server.emails().await;
    assert_eq!(emails.len(), 5);
    let before = server.store_fingerprint().await;
    server
        .post(
            "/api/passwordless/send",
            Some(SEND_KEY),
            json!({"applicationId": app, "loginId": "a@example.com"}),
        )
        .await
        .assert_status(429);
    assert_eq!(server.store_fingerprint().await, before);
    server
        .login(json!({"code": emails[4].link_code()}))
        .await
        .assert_status(200);
}

// M1, S23, S25 --------------------------------------------------------------------------------

#[tokio::test]
async fn m1_line_breaks_in_names_and_sender_names_are_refused_when_written() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let body = json!({"user": {"email": "eve@example.com", "firstName": "Eve\r\nBcc: victim@example.com"},
                      "registration": {"applicationId": app}});
    server
        .admin("POST", "/api/user/registration", body)
        .await
        .assert_error_code("[invalid]user.firstName");
    let template = json!({"emailTemplate": {"name": "T", "defaultSubject": "S", "defaultTextTemplate": "{{ url }}",
                          "defaultFromName": "Pied\nPiper"}});
    server
        .admin("POST", "/api/email/template", template)
        .await
        .assert_error_code("[invalid]emailTemplate.defaultFromName");
    let patch = json!({"tenant": {"emailConfiguration": {"defaultFromName": "A\rB"}}});
    server
        .admin(
            "PATCH",
            &format!("/api/tenant/{}", server.default_tenant()),
            patch,
        )
        .await
        .assert_error_code("[invalid]tenant.emailConfiguration.defaultFromName");
}

#[tokio::test]
async fn m1_a_stored_name_with_a_line_break_is_mailed_without_it_and_non_ascii_names_survive() {
    let (server, app) = TestServer::with_user("zoe@example.com").await;
    let user = server
        .user(
            &app,
            "mallory@example.com",
            json!({"firstName": "Zoë", "lastName": "Müller"}),
        )
        .await;
    // A record written before names were checked, or by hand.
    let mut stored = server
        .app
        .store
        .user(passwordless::domain::UserId::parse(&user).unwrap())
        .await
        .unwrap()
        .unwrap();
    let code = server.code(&app, "mallory@example.com").await;
    server.send(json!({"code": code})).await.assert_status(200);
    stored.first_name = Some("Mallory\r\nBcc: victim@example.com".into());
    stored.last_name = None;
    server.app.store.update_user(&stored).await.unwrap();
    let code_two = server.code(&app, "mallory@example.com").await;
    server
        .send(json!({"code": code_two}))
        .await
        .assert_status(200);
    let emails = server.emails().await;
    assert_eq!(
        emails[0].to,
        Address::new("Zoë Müller", "mallory@example.com")
    );
    assert_eq!(emails[1].to.email, "mallory@example.com");
    let name = emails[1].to.name.clone().unwrap_or_default();
    assert!(!name.contains('\n') && !name.contains('\r'), "{name:?}");
}

#[tokio::test]
async fn s25_a_panic_answers_500_with_a_request_id_and_the_server_keeps_serving() {
    let server = TestServer::start_with_mailer(std::sync::Arc::new(PanickingMailer)).await;
    let app = server.application(json!({})).await;
    server.user(&app, "a@example.com", json!({})).await;
    let code = server.code(&app, "a@example.com").await;
    let response = server.send(json!({"code": code})).await;
    response.assert_status(500);
    let body = response.json();
    assert_eq!(body["generalErrors"][0]["code"], "[Exception]");
    assert!(body["generalErrors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Request id"));
    // The store and the server are as usable as before: the code was stored before the send.
    server.login(json!({"code": code})).await.assert_status(200);
}

// M2 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn m2_a_login_finishes_only_in_an_active_application_with_passwordless_enabled() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let disabled = server
        .application(json!({"passwordlessConfiguration": {"enabled": false}}))
        .await;
    let inactive = server.application(json!({"active": false})).await;
    let code = server.code(&app, "a@example.com").await;
    server
        .login(json!({"code": code, "applicationId": disabled}))
        .await
        .assert_error_code("[disabled]applicationId");
    server
        .login(json!({"code": code, "applicationId": inactive}))
        .await
        .assert_error_code("[invalid]applicationId");
    server
        .start_login(&inactive, "a@example.com", json!({}))
        .await
        .assert_error_code("[invalid]applicationId");
    // Refused before the code was touched: it still logs in where it was started.
    server.login(json!({"code": code})).await.assert_status(200);
}

// M3, S29 -------------------------------------------------------------------------------------

#[tokio::test]
async fn m3_s29_templates_compile_when_saved_run_bounded_and_belong_to_a_tenant() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let broken = json!({"emailTemplate": {"name": "T", "defaultSubject": "S",
                        "defaultTextTemplate": "line one\nline two\n{% for x in %}"}});
    let response = server.admin("POST", "/api/email/template", broken).await;
    response.assert_error_code("[invalid]emailTemplate.defaultTextTemplate");
    assert!(response.text.contains("line 3"), "{}", response.text);

    let runaway = json!({"emailTemplate": {"name": "Loop", "defaultSubject": "S",
        "defaultTextTemplate": "{% for a in range(3000) %}{% for b in range(3000) %}{{ b }}{% endfor %}{% endfor %}{{ url }}"}});
    let template = server
        .admin("POST", "/api/email/template", runaway)
        .await
        .json()["emailTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patch =
        json!({"tenant": {"emailConfiguration": {"passwordlessEmailTemplateId": template}}});
    server.patch_default_tenant(patch).await;
    let code = server.code(&app, "a@example.com").await;
    let started = std::time::Instant::now();
    server.send(json!({"code": code})).await.assert_status(500);
    assert!(server.emails().await.is_empty());
    eprintln!(
        "a runaway template was stopped after {:?}",
        started.elapsed()
    );

    // A tenant-locked key makes its tenant's templates, and another tenant cannot use them.
    let hooli = server.tenant("Hooli").await;
    server.api_key(HOOLI_KEY, &[], Some(&hooli)).await;
    let own = as_key(
        &server,
        "POST",
        "/api/email/template",
        HOOLI_KEY,
        json!({"emailTemplate": {"name": "Hooli", "defaultSubject": "S", "defaultTextTemplate": "{{ url }}"}}),
    )
    .await;
    own.assert_status(200);
    assert_eq!(own.json()["emailTemplate"]["tenantId"], hooli.as_str());
    let hooli_template = own.json()["emailTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patch =
        json!({"tenant": {"emailConfiguration": {"passwordlessEmailTemplateId": hooli_template}}});
    server
        .admin(
            "PATCH",
            &format!("/api/tenant/{}", server.default_tenant()),
            patch,
        )
        .await
        .assert_error_code("[invalid]tenant.emailConfiguration.passwordlessEmailTemplateId");
    let default_owned = json!({"emailTemplate": {"name": "Ours", "defaultSubject": "S",
        "defaultTextTemplate": "{{ url }}", "tenantId": server.default_tenant()}});
    let default_owned = server
        .admin("POST", "/api/email/template", default_owned)
        .await
        .json()["emailTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sneaky = json!({"application": {"name": "Sneaky", "emailConfiguration": {"passwordlessEmailTemplateId": default_owned}}});
    as_key(&server, "POST", "/api/application", HOOLI_KEY, sneaky)
        .await
        .assert_error_code("[invalid]application.emailConfiguration.passwordlessEmailTemplateId");
}

// M5, S28 -------------------------------------------------------------------------------------

#[tokio::test]
async fn m5_s28_unknown_permission_fields_endpoints_and_methods_stop_kickstart() {
    let server = TestServer::start().await;
    server.forget_api_keys().await;
    let key = "a-key-of-thirty-two-characters-00";
    for (permissions, what) in [
        (
            json!({"endpoint": {"/api/passwordless/start": ["POST"]}}),
            "a misspelt field",
        ),
        (
            json!({"endpoints": {"/api/passwordless/strat": ["POST"]}}),
            "an unknown endpoint",
        ),
        (
            json!({"endpoints": {"/api/passwordless/start": ["DELETE"]}}),
            "an unknown method",
        ),
        (json!({"endpoints": {}}), "an empty list"),
    ] {
        let file = json!({"apiKeys": [{"key": key, "permissions": permissions}]});
        let err = apply(&server.app, &file.to_string(), &|_| None).await;
        assert!(
            matches!(err, Err(KickstartError::ApiKey { index: 0, .. })),
            "{what}: {err:?}"
        );
        // Nothing may call with such a key.
        server
            .post("/api/passwordless/start", Some(key), json!({}))
            .await
            .assert_status(401);
    }
}

// M6, S27 -------------------------------------------------------------------------------------

#[tokio::test]
async fn m6_s27_a_rotated_x_forwarded_for_does_not_escape_the_per_source_limit() {
    let server = TestServer::start().await;
    let patch = json!({"tenant": {"rateLimitConfiguration": {"sendPasswordless": {"limit": 1, "timePeriodInSeconds": 60}}}});
    server.patch_default_tenant(patch).await;
    let app = server.application(json!({})).await;
    let mut statuses = Vec::new();
    for i in 0..11 {
        let email = format!("user{i}@example.com");
        server.user(&app, &email, json!({})).await;
        let code = server.code(&app, &email).await;
        let forwarded = format!("198.51.100.{i}");
        let response = server
            .request(
                "POST",
                "/api/passwordless/send",
                None,
                &[("X-Forwarded-For", &forwarded)],
                Some(json!({"code": code}).to_string().into_bytes()),
            )
            .await;
        statuses.push(response.status.as_u16());
    }
    // Ten sends per source (ten times the per-address limit), whatever the header claims.
    assert_eq!(statuses[..10], [200; 10]);
    assert_eq!(statuses[10], 429);
}

// S7, N3, L1 ----------------------------------------------------------------------------------

/// N3, S7, S33: a hundred wrong one-time codes for one account (twenty logins burnt by five
/// each, from a key holder, whose calls no source limit holds) do not hold the account: the
/// next login's right one-time code signs in at once.
#[tokio::test]
async fn n3_s7_wrong_one_time_codes_never_hold_the_account() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let form = json!({"loginStrategy": "FormField"});
    for _ in 0..20 {
        let code = server
            .start_login(&app, "a@example.com", form.clone())
            .await
            .json()["code"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..5 {
            server
                .post(
                    "/api/passwordless/login",
                    Some(ADMIN_KEY),
                    json!({"code": code, "oneTimeCode": "wrong!"}),
                )
                .await
                .assert_error_code("[invalid]oneTimeCode");
        }
    }
    let started = server.start_login(&app, "a@example.com", form).await.json();
    let right = json!({"code": started["code"], "oneTimeCode": started["oneTimeCode"]});
    server.login(right).await.assert_status(200);
}

/// N3, S33: an anonymous source that typed thirty wrong one-time codes is answered 429 for
/// ten minutes, before any code is looked at (the live login keeps its tries); another caller
/// redeems the same login meanwhile.
#[tokio::test]
async fn n3_s33_an_anonymous_source_past_thirty_wrong_one_time_codes_waits_ten_minutes() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let form = json!({"loginStrategy": "FormField"});
    for _ in 0..6 {
        let code = server
            .start_login(&app, "a@example.com", form.clone())
            .await
            .json()["code"]
            .clone();
        for _ in 0..5 {
            server
                .login(json!({"code": code, "oneTimeCode": "wrong!"}))
                .await
                .assert_error_code("[invalid]oneTimeCode");
        }
    }
    let started = server
        .start_login(&app, "a@example.com", form.clone())
        .await
        .json();
    let right = json!({"code": started["code"], "oneTimeCode": started["oneTimeCode"]});
    let held = server.login(right.clone()).await;
    held.assert_status(429);
    assert_eq!(held.json()["generalErrors"][0]["code"], "[RateLimited]");
    server
        .post("/api/passwordless/login", Some(ADMIN_KEY), right)
        .await
        .assert_status(200);
    server.clock.advance_secs(600);
    let started = server.start_login(&app, "a@example.com", form).await.json();
    let right = json!({"code": started["code"], "oneTimeCode": started["oneTimeCode"]});
    server.login(right).await.assert_status(200);
}

// X7 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn x7_a_login_scoped_to_another_tenant_leaves_the_code_usable() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let hooli = server.tenant("Hooli").await;
    let code = server.code(&app, "a@example.com").await;
    server
        .request(
            "POST",
            "/api/passwordless/login",
            None,
            &[("X-FusionAuth-TenantId", &hooli)],
            Some(json!({"code": code}).to_string().into_bytes()),
        )
        .await
        .assert_status(404);
    server.login(json!({"code": code})).await.assert_status(200);
}

// L5 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn l5_a_kickstart_that_stops_half_way_leaves_a_store_that_is_not_served() {
    let server = TestServer::start().await;
    server.forget_api_keys().await;
    let file = json!({"requests": [
        {"method": "POST", "url": "/api/application", "body": {"application": {"name": "First"}}},
        {"method": "POST", "url": "/api/application", "body": {"application": {}}}
    ]});
    let err = apply_if_pristine(&server.app, &file.to_string(), &|_| None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, KickstartError::Request { index: 1, .. }),
        "{err}"
    );
    assert!(matches!(
        apply_if_pristine(&server.app, &file.to_string(), &|_| None).await,
        Err(KickstartError::Incomplete)
    ));
    let reopened = server.reopen().await;
    assert!(
        matches!(
            reopened,
            Err(passwordless::app::AppError::IncompleteKickstart)
        ),
        "a half-seeded store must not be served"
    );
}

// M4, S26 -------------------------------------------------------------------------------------

#[tokio::test]
async fn m4_s26_private_keys_are_sealed_and_a_copy_of_the_store_mints_no_token() {
    use passwordless::domain::SigningKey;
    let (server, app) = TestServer::with_user("a@example.com").await;
    let raw = server.raw_store().await;
    let keys = server.app.store.signing_keys().await.unwrap();
    assert!(!keys.is_empty());
    for key in &keys {
        let private = server
            .app
            .key_vault
            .open(&key.sealed_private_key, &SigningKey::seal_context(key.id))
            .await
            .unwrap();
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &private);
        for secret in [private.as_slice(), encoded.as_bytes()] {
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret),
                "a private key is in the store's bytes"
            );
        }
    }

    // The same store without the vault's key: the whole login flow works up to the signature,
    // which fails closed.
    let thief = server.stolen_copy().await;
    let start = passwordless::http::handle(
        &thief,
        json_request(
            "/api/passwordless/start",
            Some(ADMIN_KEY),
            json!({"applicationId": app, "loginId": "a@example.com"}),
        ),
    )
    .await;
    assert_eq!(start.status(), 200);
    let code: Value = serde_json::from_slice(start.body()).unwrap();
    let login = passwordless::http::handle(
        &thief,
        json_request(
            "/api/passwordless/login",
            None,
            json!({"code": code["code"]}),
        ),
    )
    .await;
    assert_eq!(login.status(), 500, "no token without the vault's key");
    assert!(!String::from_utf8_lossy(login.body()).contains("token"));
}

#[cfg(unix)]
#[tokio::test]
async fn s26_the_store_its_key_file_the_outbox_and_the_demo_settings_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (server, app) = TestServer::with_user("a@example.com").await;
    let code = server.code(&app, "a@example.com").await;
    server.send(json!({"code": code})).await.assert_status(200);
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    if matches!(server.backend, Backend::Local) {
        let dir = server.dir.path();
        assert_eq!(mode(&server.store_path()), 0o600);
        assert_eq!(mode(&server.store_path().with_extension("db-wal")), 0o600);
        assert_eq!(mode(&dir.join("store.key")), 0o600);
        assert_eq!(mode(&dir.join("outbox")), 0o700);
        for mail in std::fs::read_dir(dir.join("outbox")).unwrap() {
            assert_eq!(mode(&mail.unwrap().path()), 0o600);
        }
    }
    let demo = server.dir.path().join("settings").join("demo.env");
    let settings = passwordless_cli::demo::Demo {
        application_id: passwordless::domain::ApplicationId::parse(&app).unwrap(),
        login_id: "a@example.com",
        api_key: passwordless::domain::Secret::new("k"),
    };
    passwordless_cli::demo::write_env_file(&demo, &settings, PUBLIC_URL).unwrap();
    assert_eq!(mode(&demo), 0o600);
    assert_eq!(mode(demo.parent().unwrap()), 0o700);
}

fn json_request(path: &str, key: Option<&str>, body: Value) -> passwordless::http::HttpRequest {
    let mut headers = http::HeaderMap::new();
    if let Some(key) = key {
        headers.insert("authorization", http::HeaderValue::from_str(key).unwrap());
    }
    passwordless::http::HttpRequest {
        method: http::Method::POST,
        path: path.to_owned(),
        query: None,
        headers,
        body: bytes::Bytes::from(body.to_string()),
        source_ip: None,
        request_id: "stolen-copy".into(),
    }
}

// Second audit: N1, S32 -----------------------------------------------------------------------

/// A template that doubles a string in a loop: thirty turns would make a gigabyte.
const DOUBLING: &str = "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}";

#[tokio::test]
async fn n1_s32_a_preview_that_would_build_gigabytes_is_refused_and_the_server_stays_up() {
    let server = TestServer::start().await;
    let hooli = server.tenant("Hooli").await;
    server
        .api_key(
            HOOLI_KEY,
            &[("/api/email/template", &["POST", "GET"])],
            Some(&hooli),
        )
        .await;
    let template = |source: &str| json!({"emailTemplate": {"name": "T", "defaultSubject": "S", "defaultTextTemplate": source}});
    for source in [
        DOUBLING,
        "{{ range(10000)|join('x' * 200000) }}",
        "{% set s = 'a' * 200000 %}{{ s|replace('a', s) }}",
        concat!(
            "[#assign s = \"x\"][#list [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,",
            "21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39] as i][#assign s = s + s][/#list]${s}"
        ),
    ] {
        let started = std::time::Instant::now();
        let response = as_key(
            &server,
            "POST",
            "/api/email/template/preview",
            HOOLI_KEY,
            template(source),
        )
        .await;
        response.assert_status(400);
        assert!(
            response.text.contains("builds more than it may"),
            "{source}: {}",
            response.text
        );
        eprintln!("refused in {:?}: {source}", started.elapsed());
    }
    // Constructs that capture output are refused when the template is saved, with the line.
    let response = as_key(
        &server,
        "POST",
        "/api/email/template",
        HOOLI_KEY,
        template("Hi\n{% set x %}{{ url }}{% endset %}"),
    )
    .await;
    response.assert_error_code("[invalid]emailTemplate.defaultTextTemplate");
    assert!(response.text.contains("line 2"), "{}", response.text);
    // The server goes on serving.
    server
        .get("/api/email/template", Some(HOOLI_KEY))
        .await
        .assert_status(200);
}

// N10, S34 ------------------------------------------------------------------------------------

#[tokio::test]
async fn n10_s34_every_answer_on_an_https_public_url_sends_strict_transport_security() {
    let server = TestServer::start().await;
    assert!(PUBLIC_URL.starts_with("https://"));
    for (path, key) in [
        ("/oauth2/authorize?client_id=nope", None),
        ("/.well-known/openid-configuration", None),
        ("/api/email/template", Some(ADMIN_KEY)),
        ("/api/no-such-endpoint", None),
    ] {
        let mut request = server.client.get(format!("{}{path}", server.base));
        if let Some(key) = key {
            request = request.header("Authorization", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap().to_owned())
                .as_deref(),
            Some("max-age=31536000"),
            "{path}"
        );
    }
}

/// N21, S36: redirect and logout URLs are checked when saved: `javascript:`, `data:`, `file:`,
/// plain http to another host and fragments are refused, on create and on update, and nothing
/// is stored.
#[tokio::test]
async fn n21_s36_redirect_and_logout_urls_are_validated_when_saved() {
    let server = TestServer::start().await;
    for (field, value, code) in [
        (
            "authorizedRedirectURLs",
            json!(["javascript:alert(document.cookie)"]),
            "[invalid]application.oauthConfiguration.authorizedRedirectURLs",
        ),
        (
            "authorizedRedirectURLs",
            json!(["data:text/html,<script>x</script>"]),
            "[invalid]application.oauthConfiguration.authorizedRedirectURLs",
        ),
        (
            "authorizedRedirectURLs",
            json!(["http://app.example/callback"]),
            "[invalid]application.oauthConfiguration.authorizedRedirectURLs",
        ),
        (
            "authorizedRedirectURLs",
            json!(["https://app.example/callback#frag"]),
            "[invalid]application.oauthConfiguration.authorizedRedirectURLs",
        ),
        (
            "logoutURL",
            json!("file:///etc/passwd"),
            "[invalid]application.oauthConfiguration.logoutURL",
        ),
    ] {
        let body = json!({"application": {"name": "Bad", "oauthConfiguration": {field: value}}});
        server
            .admin("POST", "/api/application", body)
            .await
            .assert_error_code(code);
    }
    let listed = server.get("/api/application", Some(ADMIN_KEY)).await.json();
    assert!(
        !listed.to_string().contains("\"Bad\""),
        "nothing stored: {listed}"
    );
    let app = server
        .application(json!({"oauthConfiguration": {"authorizedRedirectURLs": ["com.example.app:/callback", "http://127.0.0.1:8080/cb"]}}))
        .await;
    server
        .admin(
            "PATCH",
            &format!("/api/application/{app}"),
            json!({"application": {"oauthConfiguration": {"logoutURL": "javascript:alert(1)"}}}),
        )
        .await
        .assert_error_code("[invalid]application.oauthConfiguration.logoutURL");
}
