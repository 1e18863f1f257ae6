//! Email and registration verification as FusionAuth has them: a tenant that verifies
//! addresses mails new users a verification link, a login of an unverified user answers 212
//! where the tenant gates them (an unverified registration 213) with its tokens, and the link's
//! page, the verify APIs and the resend APIs complete or renew the verification.

use crate::support::*;
use serde_json::{json, Value};

/// A verification template in the shape of FusionAuth's default: the link to the hosted page
/// built from `verificationId`, the one-time code when there is one.
async fn verification_template(server: &TestServer) -> String {
    server
        .email_template(json!({"emailTemplate": {
            "name": "Verify",
            "defaultSubject": "Confirm your address",
            "defaultHtmlTemplate": "[#if verificationOneTimeCode??]<p>Code: <b>${verificationOneTimeCode}</b></p>[/#if]<a href=\"https://login.example.test/email/verify/${verificationId}?tenantId=${user.tenantId}\">Confirm</a>",
            "defaultTextTemplate": "Confirm: https://login.example.test/email/verify/${verificationId}?tenantId=${user.tenantId}[#if verificationOneTimeCode??] code ${verificationOneTimeCode}[/#if]",
        }}))
        .await
}

async fn verifying_tenant(server: &TestServer, extra: Value) -> String {
    let template = verification_template(server).await;
    let mut email = json!({"verifyEmail": true, "verificationEmailTemplateId": template});
    merge(&mut email, extra);
    server
        .patch_default_tenant(json!({"tenant": {"emailConfiguration": email}}))
        .await;
    template
}

fn verification_id_in(body: &str) -> String {
    let start = body.find("/email/verify/").expect("a verification link") + "/email/verify/".len();
    body[start..]
        .split(['?', '"', '&', ' ', '<'])
        .next()
        .unwrap()
        .to_owned()
}

async fn create_user(server: &TestServer, application: &str, email: &str) -> Value {
    let response = server
        .admin(
            "POST",
            "/api/user/registration",
            json!({"user": {"email": email}, "registration": {"applicationId": application}}),
        )
        .await;
    response.assert_status(200);
    response.json()
}

/// A login whose code the caller delivered itself: it proves nothing about the address.
async fn api_login(server: &TestServer, application: &str, email: &str) -> Response {
    let code = server.code(application, email).await;
    server.login(json!({"code": code})).await
}

/// Presses the link page's Confirm button, as the browser holding `cookie` would.
async fn confirm(
    client: &reqwest::Client,
    server: &TestServer,
    id: &str,
    cookie: &str,
    csrf: &str,
) -> reqwest::Response {
    client
        .post(format!("{}/email/verify/{id}", server.base))
        .header("Cookie", cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tenant_that_verifies_addresses_needs_its_verification_template() {
    let server = TestServer::start().await;
    server
        .admin(
            "PATCH",
            &format!("/api/tenant/{}", server.default_tenant()),
            json!({"tenant": {"emailConfiguration": {"verifyEmail": true}}}),
        )
        .await
        .assert_error_code("[missing]tenant.emailConfiguration.verificationEmailTemplateId");
    server
        .admin(
            "PATCH",
            &format!("/api/tenant/{}", server.default_tenant()),
            json!({"tenant": {"emailConfiguration": {"verifyEmail": true, "verificationStrategy": "FormField"}}}),
        )
        .await
        .assert_error_code("[invalid]tenant.emailConfiguration.verificationStrategy");
}

#[tokio::test]
async fn a_new_user_is_mailed_a_link_and_logs_in_with_212_until_the_link_is_confirmed() {
    let server = TestServer::start().await;
    let application = server.application(json!({})).await;
    verifying_tenant(&server, json!({})).await;
    // Verifying without gating: an unverified user logs in as any other (FusionAuth's Allow).
    create_user(&server, &application, "al@example.com").await;
    api_login(&server, &application, "al@example.com")
        .await
        .assert_status(200);
    verifying_tenant(&server, json!({"unverified": {"behavior": "Gated"}})).await;
    let created = create_user(&server, &application, "ann@example.com").await;
    assert_eq!(created["user"]["verified"], false);
    let id = created["emailVerificationId"].as_str().unwrap().to_owned();
    assert!(created.get("emailVerificationOneTimeCode").is_none());
    let mail = server.emails().await.pop().unwrap();
    assert_eq!(mail.to.email, "ann@example.com");
    assert_eq!(verification_id_in(&mail.html), id);

    let unverified = api_login(&server, &application, "ann@example.com").await;
    unverified.assert_status(212);
    assert!(
        unverified.json()["token"].is_string(),
        "FusionAuth answers tokens with 212"
    );

    // The link's page changes nothing by being opened (a mail scanner fetches links).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(format!("{}/email/verify/{id}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap();
    let csrf = csrf.split('"').next().unwrap().to_owned();
    api_login(&server, &application, "ann@example.com")
        .await
        .assert_status(212);

    let confirmed = confirm(&client, &server, &id, &cookie, &csrf).await;
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed.text().await.unwrap().contains("is confirmed"));
    let user = server
        .get(
            &format!("/api/user/{}", created["user"]["id"].as_str().unwrap()),
            Some(ADMIN_KEY),
        )
        .await
        .json();
    assert_eq!(user["user"]["verified"], true);
    assert!(user["user"]["verifiedInstant"].is_number());
    api_login(&server, &application, "ann@example.com")
        .await
        .assert_status(200);

    // Used once: the same link is dead, on the page and through the API.
    let again = confirm(&client, &server, &id, &cookie, &csrf).await;
    assert_eq!(again.status(), 404);
    server
        .post(
            "/api/user/verify-email",
            None,
            json!({"verificationId": id}),
        )
        .await
        .assert_status(404);
}

#[tokio::test]
async fn an_emailed_passwordless_code_verifies_the_address_on_its_own() {
    let server = TestServer::start().await;
    let application = server.application(json!({})).await;
    verifying_tenant(&server, json!({})).await;
    create_user(&server, &application, "bob@example.com").await;
    let code = server.code(&application, "bob@example.com").await;
    server.send(json!({"code": code})).await.assert_status(200);
    let login = server.login(json!({"code": code})).await;
    login.assert_status(200);
    assert_eq!(login.json()["user"]["verified"], true);
}

#[tokio::test]
async fn the_form_field_strategy_needs_the_code_from_the_email_and_counts_wrong_ones() {
    let server = TestServer::start().await;
    let application = server.application(json!({})).await;
    verifying_tenant(
        &server,
        json!({"verificationStrategy": "FormField", "unverified": {"behavior": "Gated"}}),
    )
    .await;
    let created = create_user(&server, &application, "cy@example.com").await;
    let id = created["emailVerificationId"].as_str().unwrap().to_owned();
    let code = created["emailVerificationOneTimeCode"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(code.len(), 6);
    let mail = server.emails().await.pop().unwrap();
    assert!(mail.html.contains(&code));

    server
        .post(
            "/api/user/verify-email",
            None,
            json!({"verificationId": id}),
        )
        .await
        .assert_error_code("[blank]oneTimeCode");
    server
        .post(
            "/api/user/verify-email",
            None,
            json!({"verificationId": id, "oneTimeCode": "WRONG1"}),
        )
        .await
        .assert_error_code("[invalid]verificationId");
    // A login before the code is typed answers 212 with a fresh verification, its code mailed.
    let gated = api_login(&server, &application, "cy@example.com").await;
    gated.assert_status(212);
    let fresh = gated.json()["emailVerificationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, id);
    assert!(gated.json().get("emailVerificationOneTimeCode").is_none());
    let mailed = server.emails().await.pop().unwrap().html;
    let fresh_code = mailed
        .split("<b>")
        .nth(1)
        .unwrap()
        .split("</b>")
        .next()
        .unwrap();
    server
        .post(
            "/api/user/verify-email",
            None,
            json!({"verificationId": id, "oneTimeCode": code}),
        )
        .await
        .assert_status(200);
    api_login(&server, &application, "cy@example.com")
        .await
        .assert_status(200);
    // The other one proves the same address again: harmless, and still single-use.
    server
        .post(
            "/api/user/verify-email",
            None,
            json!({"verificationId": fresh, "oneTimeCode": fresh_code}),
        )
        .await
        .assert_status(200);
}

#[tokio::test]
async fn a_verification_is_renewed_on_request_and_proves_only_the_address_it_was_mailed_to() {
    let server = TestServer::start().await;
    let application = server.application(json!({})).await;
    // Not verifying yet: renewing is refused as FusionAuth refuses it.
    create_user(&server, &application, "dee@example.com").await;
    server
        .call(
            "PUT",
            "/api/user/verify-email?email=dee%40example.com",
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(403);
    verifying_tenant(&server, json!({})).await;
    let sent_before = server.emails().await.len();
    let quiet = server
        .call(
            "PUT",
            "/api/user/verify-email?email=dee%40example.com&sendVerifyEmail=false",
            ADMIN_KEY,
            None,
        )
        .await;
    quiet.assert_status(200);
    assert_eq!(server.emails().await.len(), sent_before, "nothing mailed");
    let renewed = server
        .call(
            "PUT",
            "/api/user/verify-email?email=DEE%40example.com",
            ADMIN_KEY,
            None,
        )
        .await;
    renewed.assert_status(200);
    let id = renewed.json()["verificationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        verification_id_in(&server.emails().await.pop().unwrap().html),
        id
    );
    server
        .call(
            "PUT",
            "/api/user/verify-email?email=nobody%40example.com",
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(404);
    server
        .request(
            "PUT",
            "/api/user/verify-email?email=dee%40example.com",
            None,
            &[],
            None,
        )
        .await
        .assert_status(401);

    // The address changes before the link is used: the link proves nothing now.
    let user_id = server
        .get("/api/user?email=dee%40example.com", Some(ADMIN_KEY))
        .await
        .json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .admin(
            "PATCH",
            &format!("/api/user/{user_id}"),
            json!({"user": {"email": "dee.new@example.com"}}),
        )
        .await
        .assert_status(200);
    server
        .post(
            "/api/user/verify-email",
            None,
            json!({"verificationId": id}),
        )
        .await
        .assert_status(404);
    let user = server
        .get(&format!("/api/user/{user_id}"), Some(ADMIN_KEY))
        .await
        .json();
    assert_eq!(user["user"]["verified"], false);

    // An operator may mark the address verified outright, with a key only.
    server
        .post("/api/user/verify-email", None, json!({"userId": user_id}))
        .await
        .assert_status(401);
    server
        .post(
            "/api/user/verify-email",
            Some(ADMIN_KEY),
            json!({"userId": user_id}),
        )
        .await
        .assert_status(200);
    let user = server
        .get(&format!("/api/user/{user_id}"), Some(ADMIN_KEY))
        .await
        .json();
    assert_eq!(user["user"]["verified"], true);
}

#[tokio::test]
async fn a_registration_to_an_application_that_verifies_them_logs_in_with_213_until_confirmed() {
    let server = TestServer::start().await;
    let template = verification_template(&server).await;
    server
        .admin(
            "POST",
            "/api/application",
            json!({"application": {"name": "Strict", "verifyRegistration": true}}),
        )
        .await
        .assert_error_code("[missing]application.verificationEmailTemplateId");
    let application = server
        .application(json!({"verifyRegistration": true, "verificationEmailTemplateId": template}))
        .await;
    let created = create_user(&server, &application, "eve@example.com").await;
    assert_eq!(created["registration"]["verified"], false);
    let id = created["registrationVerificationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mail = server.emails().await.pop().unwrap();
    assert_eq!(mail.to.email, "eve@example.com");

    let login = api_login(&server, &application, "eve@example.com").await;
    login.assert_status(213);
    assert!(login.json()["token"].is_string());

    server
        .post(
            "/api/user/verify-registration",
            None,
            json!({"verificationId": ""}),
        )
        .await
        .assert_error_code("[blank]verificationId");
    server
        .post(
            "/api/user/verify-registration",
            Some(ADMIN_KEY),
            json!({"userId": created["user"]["id"]}),
        )
        .await
        .assert_error_code("[invalidJSON]userId");
    server
        .post(
            "/api/user/verify-registration",
            None,
            json!({"verificationId": id}),
        )
        .await
        .assert_status(200);
    api_login(&server, &application, "eve@example.com")
        .await
        .assert_status(200);

    // Renewing needs the application, and answers a fresh id; skipping verifies at once.
    server
        .call(
            "PUT",
            "/api/user/verify-registration?email=eve%40example.com",
            ADMIN_KEY,
            None,
        )
        .await
        .assert_error_code("[missing]applicationId");
    let renewed = server
        .call(
            "PUT",
            &format!(
                "/api/user/verify-registration?email=eve%40example.com&applicationId={application}&sendVerifyPasswordEmail=false"
            ),
            ADMIN_KEY,
            None,
        )
        .await;
    renewed.assert_status(200);
    assert!(renewed.json()["verificationId"].is_string());
    let skipped = server
        .admin(
            "POST",
            "/api/user/registration",
            json!({"user": {"email": "fay@example.com"},
                   "registration": {"applicationId": application},
                   "skipRegistrationVerification": true}),
        )
        .await;
    skipped.assert_status(200);
    assert_eq!(skipped.json()["registration"]["verified"], true);
    assert!(skipped.json().get("registrationVerificationId").is_none());
}

#[tokio::test]
async fn gating_unverified_users_is_honoured_only_where_the_sign_in_link_verifies_them() {
    let server = TestServer::start().await;
    let template = verification_template(&server).await;
    server
        .admin(
            "PATCH",
            &format!("/api/tenant/{}", server.default_tenant()),
            json!({"tenant": {"emailConfiguration": {
                "verifyEmail": true, "verificationEmailTemplateId": template,
                "unverified": {"behavior": "Gated"},
                "implicitEmailVerificationAllowed": false,
            }}}),
        )
        .await
        .assert_error_code("[notSupported]tenant.emailConfiguration.unverified.behavior");
    server
        .admin(
            "POST",
            "/api/application",
            json!({"application": {"name": "Gated", "unverified": {"behavior": "Gated"}}}),
        )
        .await
        .assert_error_code("[notSupported]application.unverified.behavior");
}

#[tokio::test]
async fn a_changed_address_is_unverified_and_reverified_where_the_tenant_asks_for_it() {
    let server = TestServer::start().await;
    let application = server.application(json!({})).await;
    let user_id = server
        .user(&application, "gil@example.com", json!({}))
        .await;
    let code = server.code(&application, "gil@example.com").await;
    server.send(json!({"code": code})).await.assert_status(200);
    let login = server.login(json!({"code": code})).await;
    login.assert_status(200);
    assert_eq!(login.json()["user"]["verified"], true);

    let changed = server
        .admin(
            "PATCH",
            &format!("/api/user/{user_id}"),
            json!({"user": {"email": "gil.new@example.com"}}),
        )
        .await;
    changed.assert_status(200);
    assert_eq!(changed.json()["user"]["verified"], false);
    let renamed = server
        .admin(
            "PATCH",
            &format!("/api/user/{user_id}"),
            json!({"user": {"firstName": "Gil"}}),
        )
        .await;
    assert_eq!(renamed.json()["user"]["verified"], false);

    verifying_tenant(&server, json!({"verifyEmailWhenChanged": true})).await;
    let sent_before = server.emails().await.len();
    server
        .admin(
            "PATCH",
            &format!("/api/user/{user_id}"),
            json!({"user": {"email": "gil.third@example.com"}}),
        )
        .await
        .assert_status(200);
    let mail = server.emails().await;
    assert_eq!(mail.len(), sent_before + 1);
    let last = mail.last().unwrap();
    assert_eq!(last.to.email, "gil.third@example.com");
    server
        .post(
            "/api/user/verify-email",
            None,
            json!({"verificationId": verification_id_in(&last.html)}),
        )
        .await
        .assert_status(200);
}

/// S23: every store or mailer call of a verification (renewed and mailed, then taken through
/// the API) fails in turn, before and after it reaches the real port: the failed try answers a
/// server error, a verification is taken at most once, and the next try verifies.
#[tokio::test]
async fn s23_a_failure_at_any_step_of_a_verification_leaves_no_half_state_and_a_retry_verifies() {
    use crate::support::faulty::FaultTime;
    let (server, faults) = TestServer::start_with_faults().await;
    let application = server.application(json!({})).await;
    verifying_tenant(&server, json!({})).await;
    // Whether one try verified: Some(true) yes, Some(false) a step answered a server error.
    let verify = |email: String| {
        let server = &server;
        async move {
            let path = format!("/api/user/verify-email?email={}", email.replace('@', "%40"));
            let renewed = server.call("PUT", &path, ADMIN_KEY, None).await;
            if renewed.status.as_u16() >= 500 {
                return false;
            }
            renewed.assert_status(200);
            let id = renewed.json()["verificationId"]
                .as_str()
                .unwrap()
                .to_owned();
            let body = json!({"verificationId": id});
            let taken = server
                .post("/api/user/verify-email", None, body.clone())
                .await;
            if taken.status.as_u16() >= 500 {
                // Whatever the failure left, the verification is taken at most once more.
                if server
                    .post("/api/user/verify-email", None, body.clone())
                    .await
                    .status
                    == 200
                {
                    server
                        .post("/api/user/verify-email", None, body)
                        .await
                        .assert_status(404);
                }
                return false;
            }
            taken.assert_status(200);
            true
        }
    };
    create_user(&server, &application, "warm@example.com").await;
    assert!(verify("warm@example.com".to_owned()).await);
    create_user(&server, &application, "counted@example.com").await;
    let before = faults.calls();
    assert!(verify("counted@example.com".to_owned()).await);
    let calls = faults.calls() - before;
    let step = if server.on_aws() { 3 } else { 1 };
    for time in [FaultTime::Before, FaultTime::After] {
        for nth in (0..calls).step_by(step) {
            let email = format!("verify-{nth}-{time:?}@example.com").to_lowercase();
            create_user(&server, &application, &email).await;
            faults.arm(nth, time);
            let first = verify(email.clone()).await;
            faults.disarm();
            assert!(faults.fired(), "call {nth} ({time:?}) was not reached");
            assert!(!first, "call {nth} ({time:?}) failed unnoticed");
            assert!(
                verify(email).await,
                "the retry after call {nth} ({time:?}) failed"
            );
        }
    }
}
