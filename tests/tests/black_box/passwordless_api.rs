//! The passwordless API, rule by rule, over HTTP.

use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn a_code_emailed_by_send_logs_the_user_in_with_a_verifiable_token() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"jwtConfiguration": {"enabled": true, "timeToLiveInSeconds": 600}}))
        .await;
    let user = server
        .user(
            &app,
            "Jared@PiedPiper.example",
            json!({"username": "jared"}),
        )
        .await;

    let code = server.code(&app, "jared@piedpiper.example").await;
    server.send(json!({"code": code})).await.assert_status(200);
    let emails = server.emails().await;
    assert_eq!(emails.len(), 1);
    // The address was stored lowercased, as FusionAuth stores it.
    assert_eq!(
        emails[0].to,
        Address::new("Test", "jared@piedpiper.example")
    );
    // Both parts are sent; where the mail can be read back whole, the text part is there too.
    assert_eq!(emails[0].text.is_some(), server.keeps_text_parts());
    let emailed = emails[0].link_code();
    assert_eq!(emailed, code);

    let response = server.login(json!({"code": emailed})).await;
    response.assert_status(200);
    let body = response.json();
    assert_eq!(body["user"]["id"], user.as_str());
    assert_eq!(
        body["user"]["verified"], true,
        "a login by emailed code proves the address"
    );
    assert_eq!(body["user"]["lastLoginInstant"], T0.as_millis());
    assert_eq!(
        body["tokenExpirationInstant"],
        T0.plus_secs(600).as_millis()
    );
    let claims = verified_claims(&server, body["token"].as_str().unwrap(), &app).await;
    assert_eq!(claims["sub"], user.as_str());
    assert_eq!(claims["applicationId"], app.as_str());
    assert_eq!(claims["roles"], json!(["user"]));
    assert_eq!(claims["authenticationType"], "PASSWORDLESS");
    assert_eq!(claims["email"], "jared@piedpiper.example");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["preferred_username"], "jared");
    assert_eq!(claims["tid"], server.default_tenant());
    assert_eq!(claims["iat"], T0.as_secs());
    assert_eq!(claims["exp"], T0.plus_secs(600).as_secs());
    assert_eq!(claims["auth_time"], T0.as_secs());
    assert!(claims["jti"].is_string());
    let header = jsonwebtoken::decode_header(body["token"].as_str().unwrap()).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
}

#[tokio::test]
async fn a_code_started_without_send_logs_in_without_verifying_the_email() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let code = server.code(&app, "a@example.com").await;
    let body = server.login(json!({"code": code})).await.json();
    assert_eq!(body["user"]["verified"], false);
}

#[tokio::test]
async fn users_are_found_by_username_when_login_id_types_allow_it() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    server
        .user(
            &app,
            "richard@piedpiper.example",
            json!({"username": "Richard"}),
        )
        .await;
    server
        .start_login(&app, "richard", json!({}))
        .await
        .assert_status(200);
    server
        .start_login(&app, "richard", json!({"loginIdTypes": ["email"]}))
        .await
        .assert_status(404);
    server
        .start_login(&app, "RICHARD", json!({"loginIdTypes": ["username"]}))
        .await
        .assert_status(200);
    server
        .start_login(&app, "nobody@example.com", json!({}))
        .await
        .assert_status(404);
    // Matched as given, as FusionAuth does: case aside, nothing is trimmed.
    for padded in [" richard", "richard "] {
        server
            .start_login(&app, padded, json!({}))
            .await
            .assert_status(404);
    }
}

#[tokio::test]
async fn login_echoes_the_state_given_to_start() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let state = json!({"redirect_uri": "https://app.example/after", "nested": {"n": [1, 2]}});
    let code = server
        .start_login(&app, "a@example.com", json!({"state": state}))
        .await
        .json()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server.login(json!({"code": code})).await.json()["state"],
        state
    );
}

#[tokio::test]
async fn no_jwt_logs_in_without_issuing_a_token() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    server.user(&app, "a@example.com", json!({})).await;
    let code = server.code(&app, "a@example.com").await;
    let body = server.login(json!({"code": code, "noJWT": true})).await;
    body.assert_status(200);
    let body = body.json();
    assert!(
        body.get("token").is_none() && body.get("refreshToken").is_none(),
        "{body}"
    );
    assert_eq!(body["user"]["email"], "a@example.com");
}

#[tokio::test]
async fn a_refresh_token_is_issued_only_when_the_application_enables_it() {
    let server = TestServer::start().await;
    let with = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    let without = server.application(json!({})).await;
    server.user(&with, "a@example.com", json!({})).await;
    let code = server.code(&with, "a@example.com").await;
    let body = server.login(json!({"code": code})).await.json();
    assert!(
        body["refreshToken"].as_str().is_some_and(|t| t.len() >= 64),
        "{body}"
    );
    let claims = verified_claims(&server, body["token"].as_str().unwrap(), &with).await;
    assert_eq!(
        claims["sid"], body["refreshTokenId"],
        "the session id names the refresh token"
    );

    server.user(&without, "b@example.com", json!({})).await;
    let code = server.code(&without, "b@example.com").await;
    let body = server.login(json!({"code": code})).await.json();
    assert!(
        body.get("refreshToken").is_none() && body.get("refreshTokenId").is_none(),
        "{body}"
    );
    assert!(body["token"].is_string());
}

#[tokio::test]
async fn an_unregistered_user_gets_202_and_a_token_without_application_or_roles() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    server.unregistered_user("stranger@example.com").await;
    let code = server.code(&app, "stranger@example.com").await;
    let response = server.login(json!({"code": code}));
    let response = response.await;
    response.assert_status(202);
    let body = response.json();
    assert!(
        body.get("refreshToken").is_none(),
        "no refresh token without a registration"
    );
    let claims = verified_claims(&server, body["token"].as_str().unwrap(), &app).await;
    assert!(
        claims.get("applicationId").is_none() && claims.get("roles").is_none(),
        "{claims}"
    );
}

#[tokio::test]
async fn an_inactive_user_gets_423_and_an_expired_user_410() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    server
        .user(&app, "inactive@example.com", json!({"active": false}))
        .await;
    server
        .user(
            &app,
            "expired@example.com",
            json!({"expiry": T0.as_millis() - 1}),
        )
        .await;
    let code = server.code(&app, "inactive@example.com").await;
    let response = server.login(json!({"code": code})).await;
    response.assert_status(423);
    assert!(response.text.is_empty());
    let code = server.code(&app, "expired@example.com").await;
    server.login(json!({"code": code})).await.assert_status(410);
}

#[tokio::test]
async fn s5_a_code_logs_in_only_once() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let code = server.code(&app, "a@example.com").await;
    server.login(json!({"code": code})).await.assert_status(200);
    server.login(json!({"code": code})).await.assert_status(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5_fifty_concurrent_logins_with_one_code_give_exactly_one_success() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let app = server.application(json!({})).await;
    server.user(&app, "a@example.com", json!({})).await;
    let code = server.code(&app, "a@example.com").await;
    let logins = (0..50).map(|_| {
        let (server, code) = (server.clone(), code.clone());
        tokio::spawn(async move { server.login(json!({"code": code})).await.status.as_u16() })
    });
    let mut statuses = Vec::new();
    for login in logins {
        statuses.push(login.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 404).count(),
        49,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn s6_a_new_start_invalidates_the_previous_code_of_any_application() {
    let server = TestServer::start().await;
    let first_app = server.application(json!({})).await;
    let second_app = server.application(json!({})).await;
    server.user(&first_app, "a@example.com", json!({})).await;
    let first = server.code(&first_app, "a@example.com").await;
    let second = server.code(&second_app, "a@example.com").await;
    server
        .login(json!({"code": first}))
        .await
        .assert_status(404);
    server
        .login(json!({"code": second}))
        .await
        .assert_status(202);
}

#[tokio::test]
async fn s6_a_login_consumes_every_code_of_the_user() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let code = server.code(&app, "a@example.com").await;
    server.login(json!({"code": code})).await.assert_status(200);
    // Nothing of the user remains usable: a send of the used code sends nothing.
    server.send(json!({"code": code})).await.assert_status(200);
    assert!(server.emails().await.is_empty());
}

#[tokio::test]
async fn s6_a_code_logs_in_only_into_its_own_tenant() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let other_tenant = server
        .admin("POST", "/api/tenant", json!({"tenant": {"name": "Other"}}))
        .await
        .json()["tenant"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = server.code(&app, "a@example.com").await;
    let response = server
        .request(
            "POST",
            "/api/passwordless/login",
            None,
            &[("X-FusionAuth-TenantId", &other_tenant)],
            Some(json!({"code": code}).to_string().into_bytes()),
        )
        .await;
    response.assert_status(404);
}

#[tokio::test]
async fn s4_a_code_expires_after_the_default_180_seconds() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let code = server.code(&app, "a@example.com").await;
    server.clock.advance_secs(180);
    server.login(json!({"code": code})).await.assert_status(404);

    let code = server.code(&app, "a@example.com").await;
    server.clock.advance_secs(179);
    server.login(json!({"code": code})).await.assert_status(200);
}

#[tokio::test]
async fn s4_the_tenant_time_to_live_is_honoured_and_one_time_codes_are_capped_at_ten_minutes() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let patch = json!({"tenant": {"externalIdentifierConfiguration": {"passwordlessLoginTimeToLiveInSeconds": 3600}}});
    server.patch_default_tenant(patch).await;

    let code = server.code(&app, "a@example.com").await;
    server.clock.advance_secs(3599);
    server.login(json!({"code": code})).await.assert_status(200);

    let started = server
        .start_login(&app, "a@example.com", json!({"loginStrategy": "FormField"}))
        .await
        .json();
    server.clock.advance_secs(600);
    server
        .login(json!({"code": started["code"], "oneTimeCode": started["oneTimeCode"]}))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn s4_send_of_an_expired_code_sends_nothing() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let code = server.code(&app, "a@example.com").await;
    server.clock.advance_secs(181);
    server.send(json!({"code": code})).await.assert_status(200);
    assert!(server.emails().await.is_empty());
}

#[tokio::test]
async fn s10_expired_used_superseded_and_malformed_codes_get_one_answer() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let used = server.code(&app, "a@example.com").await;
    server.login(json!({"code": used})).await.assert_status(200);
    let superseded = server.code(&app, "a@example.com").await;
    let expired = server.code(&app, "a@example.com").await;
    server.clock.advance_secs(181);
    let mut answers = Vec::new();
    for code in [
        used.as_str(),
        superseded.as_str(),
        expired.as_str(),
        "not-a-code",
        "ü§∆",
        "%00",
    ] {
        let response = server.login(json!({"code": code})).await;
        answers.push((response.status.as_u16(), response.text));
    }
    assert!(
        answers.iter().all(|a| *a == (404, String::new())),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_form_field_login_needs_the_one_time_code_too() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let started = server
        .start_login(&app, "a@example.com", json!({"loginStrategy": "FormField"}))
        .await
        .json();
    let one_time = started["oneTimeCode"].as_str().unwrap();
    assert!(
        one_time.len() == 6 && one_time.bytes().all(|b| b.is_ascii_digit()),
        "{one_time}"
    );
    // FusionAuth's field errors: the code lives on until its last try.
    server
        .login(json!({"code": started["code"]}))
        .await
        .assert_error_code("[blank]oneTimeCode");
    server
        .login(json!({"code": started["code"], "oneTimeCode": "000000x"}))
        .await
        .assert_error_code("[invalid]oneTimeCode");
    server
        .login(json!({"code": started["code"], "oneTimeCode": one_time}))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn s7_a_one_time_code_is_burned_after_five_wrong_tries() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let started = server
        .start_login(&app, "a@example.com", json!({"loginStrategy": "FormField"}))
        .await
        .json();
    for _ in 0..5 {
        server
            .login(json!({"code": started["code"], "oneTimeCode": "wrong"}))
            .await
            .assert_error_code("[invalid]oneTimeCode");
    }
    server
        .login(json!({"code": started["code"], "oneTimeCode": started["oneTimeCode"]}))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn every_generator_type_shapes_the_codes() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let tenant_path = format!("/api/tenant/{}", server.default_tenant());
    type Case = (&'static str, u32, fn(u8) -> bool);
    let cases: [Case; 3] = [
        ("randomDigits", 12, |b| b.is_ascii_digit()),
        ("randomAlpha", 4, |b| b.is_ascii_uppercase()),
        ("randomAlphaNumeric", 8, |b| {
            b.is_ascii_uppercase() || b.is_ascii_digit()
        }),
    ];
    for (kind, length, allowed) in cases {
        let patch = json!({"tenant": {"externalIdentifierConfiguration": {"passwordlessLoginOneTimeCodeGenerator": {"type": kind, "length": length}}}});
        server
            .admin("PATCH", &tenant_path, patch)
            .await
            .assert_status(200);
        let started = server
            .start_login(&app, "a@example.com", json!({"loginStrategy": "FormField"}))
            .await
            .json();
        let one_time = started["oneTimeCode"].as_str().unwrap();
        assert_eq!(one_time.len(), length as usize, "{kind}");
        assert!(one_time.bytes().all(allowed), "{kind}: {one_time}");
    }
    for (bytes, chars) in [(16, 22), (128, 171)] {
        let patch = json!({"tenant": {"externalIdentifierConfiguration": {"passwordlessLoginGenerator": {"type": "randomBytes", "length": bytes}}}});
        server
            .admin("PATCH", &tenant_path, patch)
            .await
            .assert_status(200);
        let code = server.code(&app, "a@example.com").await;
        assert_eq!(
            code.len(),
            chars,
            "{bytes} bytes of base64url without padding"
        );
        assert!(code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}

#[tokio::test]
async fn generator_lengths_outside_their_range_are_rejected_by_the_tenant_api() {
    let server = TestServer::start().await;
    let tenant_path = format!("/api/tenant/{}", server.default_tenant());
    let prefix = "tenant.externalIdentifierConfiguration";
    for (field, kind, length) in [
        ("passwordlessLoginGenerator", "randomBytes", 15),
        ("passwordlessLoginGenerator", "randomBytes", 129),
        ("passwordlessLoginOneTimeCodeGenerator", "randomDigits", 3),
        ("passwordlessLoginOneTimeCodeGenerator", "randomAlpha", 13),
        (
            "passwordlessLoginOneTimeCodeGenerator",
            "randomAlphaNumeric",
            0,
        ),
    ] {
        let before = server.store_fingerprint().await;
        let patch = json!({"tenant": {"externalIdentifierConfiguration": {field: {"type": kind, "length": length}}}});
        server
            .admin("PATCH", &tenant_path, patch)
            .await
            .assert_error_code(&format!("[invalid]{prefix}.{field}.length"));
        assert_eq!(
            before,
            server.store_fingerprint().await,
            "a rejected patch changes nothing"
        );
    }
    let create = json!({"tenant": {"name": "T", "externalIdentifierConfiguration": {"passwordlessLoginGenerator": {"type": "randomBytes", "length": 8}}}});
    server
        .admin("POST", "/api/tenant", create)
        .await
        .assert_error_code(&format!(
            "[invalid]{prefix}.passwordlessLoginGenerator.length"
        ));
}

#[tokio::test]
async fn s9_send_for_an_unknown_code_answers_200_and_writes_no_mail() {
    let server = TestServer::start().await;
    let response = server.send(json!({"code": "no-such-code-at-all"})).await;
    response.assert_status(200);
    assert!(response.text.is_empty());
    assert!(server.emails().await.is_empty());
}

#[tokio::test]
async fn send_with_application_and_login_id_starts_and_sends_in_one_call() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    // This form needs a key (ours, S31); the admin key has no limits.
    let send =
        |body: serde_json::Value| server.post("/api/passwordless/send", Some(ADMIN_KEY), body);
    send(json!({"applicationId": app, "loginId": "a@example.com", "state": {"k": "v"}}))
        .await
        .assert_status(200);
    let emails = server.emails().await;
    assert_eq!(emails.len(), 1);
    let body = server
        .login(json!({"code": emails[0].link_code()}))
        .await
        .json();
    assert_eq!(body["state"], json!({"k": "v"}));
    // An unknown login id answers the same and sends nothing (S9).
    send(json!({"applicationId": app, "loginId": "nobody@example.com"}))
        .await
        .assert_status(200);
    assert_eq!(server.emails().await.len(), 1);
}

#[tokio::test]
async fn the_email_template_is_localized_by_preferred_languages() {
    let server = TestServer::start().await;
    let template = json!({"emailTemplate": {
        "name": "Localized",
        "defaultSubject": "Your link",
        "defaultTextTemplate": "Hello {{ user.firstName }}: {{ url }}",
        "defaultHtmlTemplate": "<p>Hello {{ user.firstName }}</p><a href=\"{{ url }}\">in</a>",
        "localizedSubjects": {"de": "Ihr Link"},
        "localizedTextTemplates": {"de": "Hallo {{ user.firstName }}: {{ url }}"},
        "localizedHtmlTemplates": {"de": "<p>Hallo {{ user.firstName }}</p><a href=\"{{ url }}\">rein</a>"},
        "fromEmail": "login@piedpiper.example",
        "defaultFromName": "Pied Piper"
    }});
    let template_id = server.email_template(template).await;
    let app = server
        .application(json!({"emailConfiguration": {"passwordlessEmailTemplateId": template_id}}))
        .await;
    server
        .user(
            &app,
            "erlich@aviato.example",
            json!({"firstName": "Erlich", "preferredLanguages": ["fr", "de-CH"]}),
        )
        .await;
    server
        .user(
            &app,
            "jared@piedpiper.example",
            json!({"firstName": "<script>", "preferredLanguages": ["en"]}),
        )
        .await;

    let code = server.code(&app, "erlich@aviato.example").await;
    server.send(json!({"code": code})).await.assert_status(200);
    let code = server.code(&app, "jared@piedpiper.example").await;
    server.send(json!({"code": code})).await.assert_status(200);
    let emails = server.emails().await;
    assert_eq!(emails[0].subject, "Ihr Link");
    assert!(emails[0].html.contains("<p>Hallo Erlich</p>"), "{emails:?}");
    assert_eq!(
        emails[0].from,
        Address::new("Pied Piper", "login@piedpiper.example")
    );
    assert_eq!(emails[1].subject, "Your link");
    assert!(
        emails[1].html.contains("<p>Hello &lt;script&gt;</p>"),
        "the HTML part escapes user data: {emails:?}"
    );
    if let Some(text) = &emails[1].text {
        assert!(
            text.starts_with("Hello <script>: "),
            "the text part does not: {text}"
        );
    }
}

#[tokio::test]
async fn s13_links_use_the_configured_public_url_whatever_the_host_header_says() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let code = server.code(&app, "a@example.com").await;
    let body = json!({"code": code}).to_string().into_bytes();
    server
        .request(
            "POST",
            "/api/passwordless/send",
            None,
            &[
                ("Host", "evil.example"),
                ("X-Forwarded-Host", "evil.example"),
            ],
            Some(body),
        )
        .await
        .assert_status(200);
    let email = &server.emails().await[0];
    let link = format!(
        "{PUBLIC_URL}/oauth2/passwordless/{code}?tenantId={}",
        server.default_tenant()
    );
    assert!(email.html.contains(&link), "{email:?}");
    assert!(!email.html.contains("evil.example"));
    if let Some(text) = &email.text {
        assert!(
            text.contains(&link) && !text.contains("evil.example"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn s8_sends_are_rate_limited_per_user() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let code = server.code(&app, "a@example.com").await;
    for _ in 0..5 {
        server.send(json!({"code": code})).await.assert_status(200);
    }
    server.send(json!({"code": code})).await.assert_status(429);
    assert_eq!(server.emails().await.len(), 5);
    server.clock.advance_secs(60);
    server.send(json!({"code": code})).await.assert_status(200);
}

#[tokio::test]
async fn s2_the_store_holds_no_code_token_or_key_in_the_clear() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    server.user(&app, "a@example.com", json!({})).await;
    let started = server
        .start_login(&app, "a@example.com", json!({"loginStrategy": "FormField"}))
        .await
        .json();
    let pending = server.code(&app, "a@example.com").await;
    let dump = server.store_fingerprint().await;
    let raw = server.raw_store().await;
    for secret in [
        started["code"].as_str().unwrap(),
        pending.as_str(),
        ADMIN_KEY,
    ] {
        assert!(!dump.contains(secret), "a secret is stored in the clear");
        let bytes = secret.as_bytes();
        assert!(
            !raw.windows(bytes.len()).any(|w| w == bytes),
            "a secret is in the store's bytes"
        );
    }
    let body = server.login(json!({"code": pending})).await.json();
    assert!(!server
        .store_fingerprint()
        .await
        .contains(body["refreshToken"].as_str().unwrap()));
}

/// A template in the shape of FusionAuth's default passwordless template: the link assembled
/// in FreeMarker from the code, the tenant and every `state` entry, and a subject with the
/// expiry time in the user's own time zone.
fn fusionauth_shaped_template() -> serde_json::Value {
    let link = format!(
        r#"[#setting url_escaping_charset="UTF-8"]
[#-- `state` is the map the start call was given. --]
[#assign url = "{PUBLIC_URL}/oauth2/passwordless/${{code}}?tenantId=${{user.tenantId}}" /]
[#list state!{{}} as key, value][#if key != "tenantId" && value??][#assign url = url + "&" + key?url + "=" + value?url/][/#if][/#list]
"#
    );
    json!({"emailTemplate": {
        "name": "FusionAuth-shaped",
        "defaultSubject": "[#setting time_zone = (user.timezone)!\"UTC\"]\
            [#assign expiry = (.now?long + timeToLive * 1000)?number_to_datetime /]\
            Your sign-in link expires at ${expiry?string(\"h:mm a z\")}",
        "defaultHtmlTemplate": format!(
            "{link}<p>Hi ${{user.firstName!\"there\"}},</p>\n<p><a href=\"${{url}}\">Sign in</a></p>\n"
        ),
        "defaultTextTemplate": format!("{link}Hi ${{user.firstName!\"there\"}},\n\n${{url}}\n"),
    }})
}

#[tokio::test]
async fn freemarker_templates_shaped_like_fusionauths_send_working_links() {
    let server = TestServer::start().await;
    let template_id = server.email_template(fusionauth_shaped_template()).await;
    let app = server
        .application(json!({"emailConfiguration": {"passwordlessEmailTemplateId": template_id}}))
        .await;
    server
        .user(
            &app,
            "monica@raviga.example",
            json!({"firstName": "Monica", "timezone": "America/Denver"}),
        )
        .await;
    let state = json!({"client_id": app, "redirect_uri": "https://app.example/cb?x=1", "scope": "openid email"});
    let started = server
        .start_login(&app, "monica@raviga.example", json!({"state": state}))
        .await;
    started.assert_status(200);
    let code = started.json()["code"].as_str().unwrap().to_owned();
    server.send(json!({"code": code})).await.assert_status(200);

    let email = server.emails().await.pop().unwrap();
    let tenant = server.default_tenant();
    let link = format!(
        "{PUBLIC_URL}/oauth2/passwordless/{code}?tenantId={tenant}&client_id={app}\
         &redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fx%3D1&scope=openid%20email"
    );
    // Mail carries CRLF line breaks.
    assert_eq!(
        email.html.replace("\r\n", "\n"),
        format!(
            "<p>Hi Monica,</p>\n<p><a href=\"{}\">Sign in</a></p>\n",
            link.replace('&', "&amp;")
        )
    );
    if let Some(text) = &email.text {
        assert_eq!(
            text.replace("\r\n", "\n").trim_end(),
            format!("Hi Monica,\n\n{link}")
        );
    }
    // The server's clock reads 2026-01-01T00:00:00Z and the link lives 180 seconds: in
    // Denver (UTC-7 in winter) that is the evening before.
    assert_eq!(email.subject, "Your sign-in link expires at 5:03 PM MST");
    assert_eq!(email.link_code(), code);
    server
        .login(json!({"code": code, "applicationId": app}))
        .await
        .assert_status(200);
}

#[tokio::test]
async fn freemarker_outside_the_subset_is_refused_naming_the_construct_and_line() {
    let server = TestServer::start().await;
    let mut template = fusionauth_shaped_template();
    template["emailTemplate"]["defaultTextTemplate"] =
        json!("Hello\n[#include \"footer.ftl\"]\n${url}");
    template["emailTemplate"]["defaultHtmlTemplate"] = json!("<p>${user.firstName?eval}</p>");
    let response = server
        .admin("POST", "/api/email/template", template.clone())
        .await;
    response.assert_status(400);
    let errors = &response.json()["fieldErrors"];
    let text = errors["emailTemplate.defaultTextTemplate"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("line 2") && text.contains("[#include]"),
        "{text}"
    );
    let html = errors["emailTemplate.defaultHtmlTemplate"][0]["message"]
        .as_str()
        .unwrap();
    assert!(html.contains("?eval"), "{html}");
    // The preview gives the same errors, and renders a template that is in the subset.
    server
        .admin("POST", "/api/email/template/preview", template)
        .await
        .assert_error_code("[invalid]emailTemplate.defaultTextTemplate");
    let preview = server
        .admin(
            "POST",
            "/api/email/template/preview",
            fusionauth_shaped_template(),
        )
        .await;
    preview.assert_status(200);
    let text = preview.json()["email"]["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("?tenantId=") && text.contains("&redirect_uri=https%3A%2F%2F"),
        "{text}"
    );
}

#[tokio::test]
async fn the_applications_email_login_strategy_is_the_default_a_start_may_override() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"passwordlessConfiguration": {"emailLoginStrategy": "FormField"}}))
        .await;
    server.user(&app, "a@example.com", json!({})).await;
    let retrieved = server
        .get(&format!("/api/application/{app}"), Some(ADMIN_KEY))
        .await
        .json();
    assert_eq!(
        retrieved["application"]["passwordlessConfiguration"]["emailLoginStrategy"],
        "FormField"
    );
    let by_default = server
        .start_login(&app, "a@example.com", json!({}))
        .await
        .json();
    assert!(by_default["oneTimeCode"].is_string(), "{by_default}");
    let overridden = server
        .start_login(
            &app,
            "a@example.com",
            json!({"loginStrategy": "ClickableLink"}),
        )
        .await
        .json();
    assert!(overridden.get("oneTimeCode").is_none(), "{overridden}");
    server
        .login(json!({"code": overridden["code"]}))
        .await
        .assert_status(200);
    let plain = server.application(json!({})).await;
    let retrieved = server
        .get(&format!("/api/application/{plain}"), Some(ADMIN_KEY))
        .await
        .json();
    assert_eq!(
        retrieved["application"]["passwordlessConfiguration"]["emailLoginStrategy"],
        "ClickableLink"
    );
}

/// Starts, emails and logs in with the code; answers the user's `verified`.
async fn emailed_login(server: &TestServer, app: &str) -> serde_json::Value {
    let code = server.code(app, "a@example.com").await;
    server.send(json!({"code": code})).await.assert_status(200);
    server.login(json!({"code": code})).await.json()["user"]["verified"].clone()
}

#[tokio::test]
async fn an_emailed_code_verifies_the_email_unless_the_tenant_forbids_implicit_verification() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    // Not emailed: the login proves nothing about the address.
    let code = server.code(&app, "a@example.com").await;
    let body = server.login(json!({"code": code})).await.json();
    assert_eq!(body["user"]["verified"], false);
    let user = body["user"]["id"].as_str().unwrap().to_owned();

    server
        .patch_default_tenant(
            json!({"tenant": {"emailConfiguration": {"implicitEmailVerificationAllowed": false}}}),
        )
        .await;
    assert_eq!(emailed_login(&server, &app).await, false);
    server
        .patch_default_tenant(
            json!({"tenant": {"emailConfiguration": {"implicitEmailVerificationAllowed": true}}}),
        )
        .await;
    assert_eq!(emailed_login(&server, &app).await, true);
    let stored = server
        .get(&format!("/api/user/{user}"), Some(ADMIN_KEY))
        .await
        .json();
    assert_eq!(stored["user"]["verified"], true);
}
