//! Two-factor sign-in after the magic link, as FusionAuth has it: a user with a method gets a
//! 242 and a `twoFactorId` instead of tokens, and finishes with `/api/two-factor/login`; a
//! trusted browser skips the step; recovery codes stand in once each; every secret is stored
//! hashed or sealed.

use crate::support::*;
use passwordless::domain::two_factor::AuthenticatorSecret;
use serde_json::{json, Value};

struct Enrolled {
    user: String,
    secret: AuthenticatorSecret,
    secret_text: Value,
    recovery_codes: Vec<String>,
    method_id: String,
}

/// A registered user with an authenticator app, enabled with the code of the current step.
async fn enrolled(server: &TestServer, application: &str, email: &str) -> Enrolled {
    let user = server.user(application, email, json!({})).await;
    let secret_text = server
        .get("/api/two-factor/secret", Some(ADMIN_KEY))
        .await
        .json();
    assert!(secret_text["otpauthURI"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let secret = AuthenticatorSecret::from_base64(secret_text["secret"].as_str().unwrap()).unwrap();
    let enabled = server
        .admin(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            json!({"method": "authenticator", "code": secret.code_at(server.clock_now()),
                   "secretBase32Encoded": secret_text["secretBase32Encoded"]}),
        )
        .await;
    enabled.assert_status(200);
    let recovery_codes: Vec<String> = enabled.json()["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let shown = server
        .get(&format!("/api/user/{user}"), Some(ADMIN_KEY))
        .await
        .json();
    let method_id = shown["user"]["twoFactor"]["methods"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Enrolled {
        user,
        secret,
        secret_text,
        recovery_codes,
        method_id,
    }
}

/// A passwordless login that must answer 242: the step's id.
async fn first_step(server: &TestServer, application: &str, email: &str, extra: Value) -> String {
    let code = server.code(application, email).await;
    let mut body = json!({"code": code});
    merge(&mut body, extra);
    let answer = server.login(body).await;
    answer.assert_status(242);
    let body = answer.json();
    assert!(
        body.get("token").is_none() && body.get("user").is_none(),
        "{body}"
    );
    body["twoFactorId"].as_str().unwrap().to_owned()
}

async fn second_step(server: &TestServer, body: Value) -> Response {
    server.post("/api/two-factor/login", None, body).await
}

/// Six digits that are none of the codes around now.
fn wrong_code(secret: &AuthenticatorSecret, server: &TestServer) -> String {
    let now = server.clock_now();
    let near: Vec<String> = [-30, 0, 30, 60]
        .iter()
        .map(|offset| secret.code_at(now.plus_secs(*offset)))
        .collect();
    ["000000", "111111", "222222", "333333", "444444"]
        .into_iter()
        .find(|c| !near.iter().any(|n| n == c))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_user_with_a_method_gets_242_and_finishes_with_the_second_step() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    let two = enrolled(&server, &app, "gilfoyle@example.com").await;
    assert_eq!(two.recovery_codes.len(), 10);
    let step = first_step(&server, &app, "gilfoyle@example.com", json!({})).await;
    server.clock.advance_secs(30);
    let done = second_step(
        &server,
        json!({"twoFactorId": step, "code": two.secret.code_at(server.clock_now())}),
    )
    .await;
    done.assert_status(200);
    let body = done.json();
    assert_eq!(body["user"]["id"], two.user.as_str());
    assert!(
        body["token"].is_string() && body["refreshToken"].is_string(),
        "{body}"
    );
    assert!(body.get("twoFactorTrustId").is_none());
}

#[tokio::test]
async fn s5_a_step_is_used_once_and_an_authenticator_code_is_refused_when_replayed() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let two = enrolled(&server, &app, "replay@example.com").await;
    let step = first_step(&server, &app, "replay@example.com", json!({})).await;
    // The code that enabled the method is spent for its window.
    let enabling_code = two.secret.code_at(server.clock_now());
    second_step(&server, json!({"twoFactorId": step, "code": enabling_code}))
        .await
        .assert_status(421);
    let next = two.secret.code_at(server.clock_now().plus_secs(30));
    second_step(&server, json!({"twoFactorId": step, "code": next}))
        .await
        .assert_status(200);
    second_step(&server, json!({"twoFactorId": step, "code": next}))
        .await
        .assert_status(404);
    let again = first_step(&server, &app, "replay@example.com", json!({})).await;
    second_step(&server, json!({"twoFactorId": again, "code": next}))
        .await
        .assert_status(421);
}

#[tokio::test]
async fn s7_the_fifth_wrong_code_ends_the_step() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let two = enrolled(&server, &app, "guesser@example.com").await;
    let step = first_step(&server, &app, "guesser@example.com", json!({})).await;
    let wrong = wrong_code(&two.secret, &server);
    for _ in 0..5 {
        second_step(&server, json!({"twoFactorId": step, "code": wrong}))
            .await
            .assert_status(421);
    }
    let right = two.secret.code_at(server.clock_now().plus_secs(30));
    second_step(&server, json!({"twoFactorId": step, "code": right}))
        .await
        .assert_status(404);
}

/// N3, S33: a hundred wrong one-time codes for the first factor (which anybody who knows the
/// address can cause) leave the second factor alone: the authenticator's code, a recovery code
/// and removing a method all work at once.
#[tokio::test]
async fn n3_s33_wrong_first_factor_codes_never_hold_the_second_factor() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let two = enrolled(&server, &app, "held@example.com").await;
    for _ in 0..20 {
        let started = server
            .start_login(
                &app,
                "held@example.com",
                json!({"loginStrategy": "FormField"}),
            )
            .await
            .json();
        for _ in 0..5 {
            server
                .post(
                    "/api/passwordless/login",
                    Some(ADMIN_KEY),
                    json!({"code": started["code"], "oneTimeCode": "wrong!"}),
                )
                .await
                .assert_status(400);
        }
    }
    let step = first_step(&server, &app, "held@example.com", json!({})).await;
    let code = two.secret.code_at(server.clock_now().plus_secs(30));
    second_step(&server, json!({"twoFactorId": step, "code": code}))
        .await
        .assert_status(200);
    let step = first_step(&server, &app, "held@example.com", json!({})).await;
    second_step(
        &server,
        json!({"twoFactorId": step, "code": two.recovery_codes[0]}),
    )
    .await
    .assert_status(200);
    server.clock.advance_secs(30);
    let path = format!(
        "/api/user/two-factor/{}?methodId={}&code={}",
        two.user,
        two.method_id,
        two.secret.code_at(server.clock_now().plus_secs(30))
    );
    server
        .call("DELETE", &path, ADMIN_KEY, None)
        .await
        .assert_status(200);
}

/// A trust id from a second step finished with "trust this computer".
async fn trusted(server: &TestServer, app: &str, email: &str, two: &Enrolled, at: i64) -> String {
    let step = first_step(server, app, email, json!({})).await;
    let done = second_step(
        server,
        json!({"twoFactorId": step, "trustComputer": true,
               "code": two.secret.code_at(server.clock_now().plus_secs(at))}),
    )
    .await;
    done.assert_status(200);
    done.json()["twoFactorTrustId"].as_str().unwrap().to_owned()
}

/// N7, S38: resetting a user's methods ends the browsers they trusted, and so does the API
/// that ends them on request; a browser trusted afterwards is trusted again.
#[tokio::test]
async fn n7_s38_a_reset_or_the_api_ends_every_trusted_browser() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let email = "trusting.reset@example.com";
    let two = enrolled(&server, &app, email).await;
    let trust = trusted(&server, &app, email, &two, 30).await;
    let with_trust = |trust: &str| json!({"twoFactorTrustId": trust});
    let code = server.code(&app, email).await;
    let mut body = with_trust(&trust);
    merge(&mut body, json!({"code": code}));
    server.login(body).await.assert_status(200);

    // The API ends it.
    server
        .call(
            "DELETE",
            &format!("/api/user/two-factor/trust/{}", two.user),
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(200);
    first_step(&server, &app, email, with_trust(&trust)).await;
    server.clock.advance_secs(30);
    let again = trusted(&server, &app, email, &two, 30).await;
    first_step(&server, &app, email, with_trust(&trust)).await;
    let code = server.code(&app, email).await;
    let mut body = with_trust(&again);
    merge(&mut body, json!({"code": code}));
    server.login(body).await.assert_status(200);

    // A reset (a recovery code removes every method) ends it too, for the methods enrolled
    // after.
    let path = format!(
        "/api/user/two-factor/{}?methodId={}&code={}",
        two.user, two.method_id, two.recovery_codes[0]
    );
    server
        .call("DELETE", &path, ADMIN_KEY, None)
        .await
        .assert_status(200);
    server.clock.advance_secs(90);
    server
        .admin(
            "POST",
            &format!("/api/user/two-factor/{}", two.user),
            json!({"method": "authenticator", "code": two.secret.code_at(server.clock_now()),
                   "secretBase32Encoded": two.secret_text["secretBase32Encoded"]}),
        )
        .await
        .assert_status(200);
    first_step(&server, &app, email, with_trust(&again)).await;
}

#[tokio::test]
async fn s4_a_step_expires_with_the_tenants_two_factor_id_ttl() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let two = enrolled(&server, &app, "late@example.com").await;
    let step = first_step(&server, &app, "late@example.com", json!({})).await;
    server.clock.advance_secs(300);
    let code = two.secret.code_at(server.clock_now());
    second_step(&server, json!({"twoFactorId": step, "code": code}))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn a_trusted_browser_skips_the_step_for_its_user_only() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let two = enrolled(&server, &app, "trusting@example.com").await;
    let _other = enrolled(&server, &app, "other@example.com").await;
    let step = first_step(&server, &app, "trusting@example.com", json!({})).await;
    let done = second_step(
        &server,
        json!({"twoFactorId": step, "trustComputer": true,
               "code": two.secret.code_at(server.clock_now().plus_secs(30))}),
    )
    .await;
    done.assert_status(200);
    let trust = done.json()["twoFactorTrustId"].as_str().unwrap().to_owned();
    let code = server.code(&app, "trusting@example.com").await;
    server
        .login(json!({"code": code, "twoFactorTrustId": trust}))
        .await
        .assert_status(200);
    first_step(
        &server,
        &app,
        "other@example.com",
        json!({"twoFactorTrustId": trust}),
    )
    .await;
    let status = server
        .get(
            &format!(
                "/api/two-factor/status/{trust}?userId={}&applicationId={app}",
                two.user
            ),
            Some(ADMIN_KEY),
        )
        .await;
    status.assert_status(200);
    server.clock.advance_secs(2_592_000);
    let code = server.code(&app, "trusting@example.com").await;
    server
        .login(json!({"code": code, "twoFactorTrustId": trust}))
        .await
        .assert_status(242);
}

#[tokio::test]
async fn a_recovery_code_works_once_and_removing_by_one_removes_every_method() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let two = enrolled(&server, &app, "lost@example.com").await;
    let step = first_step(&server, &app, "lost@example.com", json!({})).await;
    let without_dash = two.recovery_codes[0].replace('-', "").to_lowercase();
    second_step(&server, json!({"twoFactorId": step, "code": without_dash}))
        .await
        .assert_status(200);
    let step = first_step(&server, &app, "lost@example.com", json!({})).await;
    second_step(
        &server,
        json!({"twoFactorId": step, "code": two.recovery_codes[0]}),
    )
    .await
    .assert_status(421);
    let path = format!(
        "/api/user/two-factor/{}?methodId={}&code={}",
        two.user, two.method_id, two.recovery_codes[1]
    );
    server
        .call("DELETE", &path, ADMIN_KEY, None)
        .await
        .assert_status(200);
    let user = server
        .get(&format!("/api/user/{}", two.user), Some(ADMIN_KEY))
        .await
        .json();
    assert!(user["user"].get("twoFactor").is_none(), "{user}");
    let code = server.code(&app, "lost@example.com").await;
    server.login(json!({"code": code})).await.assert_status(200);
}

#[tokio::test]
async fn s2_s26_secrets_recovery_codes_and_ids_never_reach_the_store_in_the_clear() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let two = enrolled(&server, &app, "sealed@example.com").await;
    let step = first_step(&server, &app, "sealed@example.com", json!({})).await;
    let done = second_step(
        &server,
        json!({"twoFactorId": step, "trustComputer": true,
               "code": two.secret.code_at(server.clock_now().plus_secs(30))}),
    )
    .await;
    done.assert_status(200);
    let trust = done.json()["twoFactorTrustId"].as_str().unwrap().to_owned();
    let pending = first_step(&server, &app, "sealed@example.com", json!({})).await;
    let raw = String::from_utf8_lossy(&server.raw_store().await).into_owned();
    let mut secrets = vec![
        two.secret_text["secret"].as_str().unwrap().to_owned(),
        two.secret_text["secretBase32Encoded"]
            .as_str()
            .unwrap()
            .to_owned(),
        step,
        pending,
        trust,
    ];
    for code in &two.recovery_codes {
        secrets.push(code.clone());
        secrets.push(code.replace('-', ""));
    }
    for secret in secrets {
        assert!(
            !raw.contains(&secret),
            "the store holds {secret} in the clear"
        );
    }
}

#[tokio::test]
async fn s3_s11_codes_and_ids_longer_than_any_secret_are_refused_before_any_comparison() {
    let server = TestServer::start().await;
    let long = "9".repeat(300);
    let answer = second_step(&server, json!({"twoFactorId": long, "code": "123456"})).await;
    answer.assert_status(400);
    answer.assert_error_code("[tooLong]twoFactorId");
    let answer = second_step(&server, json!({"twoFactorId": "x", "code": long})).await;
    answer.assert_status(400);
    answer.assert_error_code("[tooLong]code");
    let answer = second_step(&server, json!({"twoFactorId": "x"})).await;
    answer.assert_error_code("[blank]code");
}

#[tokio::test]
async fn enabling_needs_a_valid_first_code_and_the_user_object_never_shows_a_secret() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let user = server.user(&app, "careful@example.com", json!({})).await;
    let secret = server
        .get("/api/two-factor/secret", Some(ADMIN_KEY))
        .await
        .json();
    let parsed = AuthenticatorSecret::from_base64(secret["secret"].as_str().unwrap()).unwrap();
    let path = format!("/api/user/two-factor/{user}");
    server
        .admin(
            "POST",
            &path,
            json!({"method": "authenticator", "code": wrong_code(&parsed, &server), "secret": secret["secret"]}),
        )
        .await
        .assert_status(421);
    server
        .admin("POST", &path, json!({"method": "sms", "code": "123456"}))
        .await
        .assert_error_code("[invalid]method");
    server
        .admin(
            "POST",
            &path,
            json!({"method": "authenticator", "code": "123456"}),
        )
        .await
        .assert_error_code("[blank]secret");
    let shown = server
        .get(&format!("/api/user/{user}"), Some(ADMIN_KEY))
        .await
        .json();
    assert!(
        shown["user"].get("twoFactor").is_none(),
        "nothing enabled yet"
    );
    let two = enrolled(&server, &app, "shown@example.com").await;
    let shown = server
        .get(&format!("/api/user/{}", two.user), Some(ADMIN_KEY))
        .await
        .json();
    let text = shown.to_string();
    assert!(!text.contains(two.secret_text["secret"].as_str().unwrap()));
    assert!(!text.contains(two.secret_text["secretBase32Encoded"].as_str().unwrap()));
    assert_eq!(
        shown["user"]["twoFactor"]["methods"][0]["method"],
        "authenticator"
    );
    // An update of the whole user keeps the methods: they change only through their API.
    let mut user = shown["user"].clone();
    user["twoFactor"] = json!({"methods": []});
    user["firstName"] = json!("Shown");
    server
        .admin(
            "PUT",
            &format!("/api/user/{}", two.user),
            json!({"user": user}),
        )
        .await
        .assert_status(200);
    let code = server.code(&app, "shown@example.com").await;
    server.login(json!({"code": code})).await.assert_status(242);
}

#[tokio::test]
async fn the_login_policy_decides_who_is_asked() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    enrolled(&server, &app, "policy@example.com").await;
    server.user(&app, "plain@example.com", json!({})).await;
    server
        .patch_default_tenant(
            json!({"tenant": {"multiFactorConfiguration": {"loginPolicy": "Disabled"}}}),
        )
        .await;
    let code = server.code(&app, "policy@example.com").await;
    server.login(json!({"code": code})).await.assert_status(200);
    server
        .patch_default_tenant(
            json!({"tenant": {"multiFactorConfiguration": {"loginPolicy": "Required"}}}),
        )
        .await;
    let code = server.code(&app, "plain@example.com").await;
    let answer = server.login(json!({"code": code})).await;
    answer.assert_status(242);
    assert_eq!(answer.json()["methods"], json!([]));
    // The application's own policy wins over the tenant's.
    server
        .admin(
            "PATCH",
            &format!("/api/application/{app}"),
            json!({"application": {"multiFactorConfiguration": {"loginPolicy": "Disabled"}}}),
        )
        .await
        .assert_status(200);
    let code = server.code(&app, "plain@example.com").await;
    server.login(json!({"code": code})).await.assert_status(200);
}

#[tokio::test]
async fn a_user_without_a_method_under_required_enrols_during_the_step() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let user = server.user(&app, "newbie@example.com", json!({})).await;
    server
        .patch_default_tenant(
            json!({"tenant": {"multiFactorConfiguration": {"loginPolicy": "Required"}}}),
        )
        .await;
    let step = first_step(&server, &app, "newbie@example.com", json!({})).await;
    let secret = AuthenticatorSecret::from_base64("MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=").unwrap();
    let enabled = server
        .admin(
            "POST",
            &format!("/api/user/two-factor/{user}"),
            json!({"method": "authenticator", "secret": "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=",
                   "code": secret.code_at(server.clock_now()), "twoFactorId": step}),
        )
        .await;
    enabled.assert_status(200);
    let finishing = enabled.json()["code"].as_str().unwrap().to_owned();
    let done = second_step(&server, json!({"twoFactorId": step, "code": finishing})).await;
    done.assert_status(200);
    assert_eq!(done.json()["user"]["id"], user.as_str());
}

/// The code in the newest mail.
async fn mailed_code(server: &TestServer) -> String {
    let mail = server.emails().await.pop().unwrap();
    let start = mail.html.find("<b>").unwrap() + 3;
    mail.html[start..start + 6].to_owned()
}

#[tokio::test]
async fn an_email_method_is_enabled_and_answered_with_mailed_codes() {
    let server = TestServer::start().await;
    let template = server
        .email_template(json!({"emailTemplate": {
            "name": "Two-factor code",
            "defaultSubject": "Your code",
            "defaultHtmlTemplate": "<p>Your code: <b>${code}</b></p>",
            "defaultTextTemplate": "Your code: ${code}",
        }}))
        .await;
    server
        .patch_default_tenant(json!({"tenant": {"multiFactorConfiguration": {
            "email": {"enabled": true, "templateId": template}}}}))
        .await;
    let app = server.application(json!({})).await;
    let user = server.user(&app, "mailer@example.com", json!({})).await;
    server
        .admin(
            "POST",
            "/api/two-factor/send",
            json!({"userId": user, "method": "email", "email": "second@example.com"}),
        )
        .await
        .assert_status(200);
    let code = mailed_code(&server).await;
    let path = format!("/api/user/two-factor/{user}");
    server
        .admin(
            "POST",
            &path,
            json!({"method": "email", "email": "other@example.com", "code": code}),
        )
        .await
        .assert_error_code("[invalid]code");
    server
        .admin(
            "POST",
            "/api/two-factor/send",
            json!({"userId": user, "method": "email", "email": "second@example.com"}),
        )
        .await
        .assert_status(200);
    let code = mailed_code(&server).await;
    let enabled = server
        .admin(
            "POST",
            &path,
            json!({"method": "email", "email": "second@example.com", "code": code}),
        )
        .await;
    enabled.assert_status(200);
    assert_eq!(
        enabled.json()["recoveryCodes"].as_array().unwrap().len(),
        10
    );
    let login_code = server.code(&app, "mailer@example.com").await;
    let answer = server.login(json!({"code": login_code})).await;
    answer.assert_status(242);
    let body = answer.json();
    let step = body["twoFactorId"].as_str().unwrap().to_owned();
    assert_eq!(body["methods"][0]["email"], "second@example.com");
    let method = body["methods"][0]["id"].as_str().unwrap().to_owned();
    server
        .post(
            &format!("/api/two-factor/send/{step}"),
            None,
            json!({"methodId": method}),
        )
        .await
        .assert_status(200);
    let mail = server.emails().await.pop().unwrap();
    assert_eq!(mail.to.email, "second@example.com");
    let code = mailed_code(&server).await;
    second_step(&server, json!({"twoFactorId": step, "code": code}))
        .await
        .assert_status(200);
}

/// S23: every store or mailer call of a login with a second step (the first factor, 242, the
/// authenticator's code) fails in turn, before and after it reaches the real port: the failed
/// try answers a server error and never signs in, a step is finished at most once, and the
/// next try signs in.
#[tokio::test]
async fn s23_a_failure_at_any_step_of_a_two_factor_login_leaves_no_half_state_and_a_retry_signs_in()
{
    use crate::support::faulty::FaultTime;
    let (server, faults) = TestServer::start_with_faults().await;
    let app = server.application(json!({})).await;
    let two = enrolled(&server, &app, "counted.two@example.com").await;
    // Whether one try signed in; each try gets a fresh time step of the authenticator.
    let sign_in = || async {
        server.clock.advance_secs(61);
        let started = server
            .start_login(&app, "counted.two@example.com", json!({}))
            .await;
        if started.status.as_u16() >= 500 {
            return false;
        }
        let code = started.json()["code"].as_str().unwrap().to_owned();
        let first = server.login(json!({"code": code})).await;
        if first.status.as_u16() >= 500 {
            return false;
        }
        first.assert_status(242);
        let step = first.json()["twoFactorId"].as_str().unwrap().to_owned();
        let body = json!({"twoFactorId": step, "code": two.secret.code_at(server.clock_now())});
        let done = second_step(&server, body.clone()).await;
        if done.status.as_u16() >= 500 {
            if second_step(&server, body.clone()).await.status == 200 {
                let third = second_step(&server, body).await.status.as_u16();
                assert!(
                    third == 404 || third == 421,
                    "a step is finished once: {third}"
                );
            }
            return false;
        }
        done.assert_status(200);
        assert!(done.json()["token"].is_string());
        true
    };
    // The first try fills the caches (a signing key opened once); the second is counted.
    assert!(sign_in().await);
    let before = faults.calls();
    assert!(sign_in().await);
    let calls = faults.calls() - before;
    let step = if server.on_aws() { 3 } else { 1 };
    for time in [FaultTime::Before, FaultTime::After] {
        for nth in (0..calls).step_by(step) {
            faults.arm(nth, time);
            let first = sign_in().await;
            faults.disarm();
            assert!(faults.fired(), "call {nth} ({time:?}) was not reached");
            assert!(!first, "call {nth} ({time:?}) failed unnoticed");
            assert!(
                sign_in().await,
                "the retry after call {nth} ({time:?}) failed"
            );
        }
    }
}
