//! Kickstart files: variables, API keys and management requests through the real handlers.

use crate::support::*;
use serde_json::json;

use passwordless::kickstart::{apply, apply_if_pristine, KickstartError, KickstartOutcome};

const SAMPLE: &str = include_str!("../../../examples/kickstart.json");
const SAMPLE_KEY: &str = "sample-kickstart-key-00000000000000";
const START_KEY: &str = "sample-start-only-key-000000000000";

fn env(name: &str) -> Option<String> {
    match name {
        "KICKSTART_API_KEY" => Some(SAMPLE_KEY.to_owned()),
        "KICKSTART_START_KEY" => Some(START_KEY.to_owned()),
        _ => None,
    }
}

/// A server whose store holds only what the kickstart file puts there.
async fn pristine() -> TestServer {
    let server = TestServer::start().await;
    // The harness's admin key makes the store non-pristine; kickstart is tested on its own terms.
    server.forget_api_keys().await;
    server
}

#[tokio::test]
async fn the_sample_kickstart_file_applies_cleanly_and_its_users_can_log_in() {
    let server = pristine().await;
    let outcome = apply_if_pristine(&server.app, SAMPLE, &env).await.unwrap();
    assert_eq!(
        outcome,
        KickstartOutcome::Applied {
            api_keys: 2,
            requests: 5
        }
    );

    let app = "3c219e58-ed0e-4b18-ad48-f4f92793ae32";
    let body = json!({"applicationId": app, "loginId": "erlich@aviato.example"});
    let started = server
        .post("/api/passwordless/start", Some(SAMPLE_KEY), body.clone())
        .await;
    started.assert_status(200);
    // The start-only key may start, and nothing else.
    server
        .post("/api/passwordless/start", Some(START_KEY), body)
        .await
        .assert_status(200);
    server
        .get("/api/user?email=erlich%40aviato.example", Some(START_KEY))
        .await
        .assert_status(401);

    // The newest start superseded the first; send it and log in with the emailed link.
    let code = server
        .post(
            "/api/passwordless/start",
            Some(SAMPLE_KEY),
            json!({"applicationId": app, "loginId": "erlich@aviato.example"}),
        )
        .await
        .json()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    server.send(json!({"code": code})).await.assert_status(200);
    let email = server.emails().await.pop().unwrap();
    assert_eq!(email.subject, "Ihr Pied-Piper-Anmeldelink");
    assert_eq!(
        email.from,
        Address::new("Pied Piper", "login@piedpiper.example")
    );
    let response = server.login(json!({"code": email.link_code()})).await;
    response.assert_status(200);
    let body = response.json();
    assert!(body["refreshToken"].is_string());
    assert_eq!(
        verified_claims(&server, body["token"].as_str().unwrap(), app).await["roles"],
        json!(["admin"])
    );

    // The tenant patch took: codes live 300 seconds.
    let started = server
        .post(
            "/api/passwordless/start",
            Some(SAMPLE_KEY),
            json!({"applicationId": app, "loginId": "jared@piedpiper.example"}),
        )
        .await;
    let code = started.json()["code"].as_str().unwrap().to_owned();
    server.clock.advance_secs(299);
    server.login(json!({"code": code})).await.assert_status(200);
}

#[tokio::test]
async fn kickstart_applies_only_to_an_empty_store() {
    let server = pristine().await;
    apply_if_pristine(&server.app, SAMPLE, &env).await.unwrap();
    assert_eq!(
        apply_if_pristine(&server.app, SAMPLE, &env).await.unwrap(),
        KickstartOutcome::Skipped
    );
}

#[tokio::test]
async fn a_failing_request_stops_kickstart_with_its_index_and_error_body() {
    let server = pristine().await;
    let file = json!({
        "variables": {"appId": "#{UUID()}"},
        "requests": [
            {"method": "POST", "url": "/api/application/#{appId}", "body": {"application": {"name": "First"}}},
            {"method": "POST", "url": "/api/application/#{appId}", "body": {"application": {"name": "Again"}}},
            {"method": "POST", "url": "/api/application", "body": {"application": {"name": "Never"}}}
        ]
    });
    let err = apply(&server.app, &file.to_string(), &env)
        .await
        .unwrap_err();
    match err {
        KickstartError::Request {
            index,
            status,
            body,
            ..
        } => {
            assert_eq!((index, status), (1, 400));
            assert!(body.contains("[duplicate]applicationId"), "{body}");
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn variables_environment_and_uuids_are_substituted_everywhere() {
    let server = pristine().await;
    let file = json!({
        "variables": {"name": "Hooli", "tenantId": "#{UUID()}", "label": "#{name} XYZ"},
        "apiKeys": [{"key": "#{ENV.KICKSTART_API_KEY}", "tenantId": "#{tenantId}"}],
        "requests": [
            {"method": "POST", "url": "/api/tenant/#{tenantId}", "body": {"tenant": {"name": "#{label}"}}},
        ]
    });
    // The key names a tenant the requests create later: keys come first, so this must fail clearly.
    let err = apply(&server.app, &file.to_string(), &env)
        .await
        .unwrap_err();
    assert!(
        matches!(err, KickstartError::ApiKey { index: 0, .. }),
        "{err}"
    );

    let server = pristine().await;
    let file = json!({
        "variables": {"name": "Hooli", "tenantId": "#{UUID()}", "label": "#{name} XYZ"},
        "requests": [{"method": "POST", "url": "/api/tenant/#{tenantId}", "body": {"tenant": {"name": "#{label}", "issuer": "#{ENV.KICKSTART_API_KEY}"}}}]
    });
    apply(&server.app, &file.to_string(), &env).await.unwrap();
    let tenants = server.app.store.tenants().await.unwrap();
    let hooli = tenants
        .iter()
        .find(|t| t.name == "Hooli XYZ")
        .expect("the tenant was created");
    assert_eq!(hooli.issuer, SAMPLE_KEY);

    let missing = json!({"apiKeys": [{"key": "#{ENV.NOT_SET_ANYWHERE}"}]});
    assert!(
        matches!(apply(&server.app, &missing.to_string(), &env).await, Err(KickstartError::MissingEnv(name)) if name == "NOT_SET_ANYWHERE")
    );
    let unknown = json!({"apiKeys": [{"key": "#{nope}"}]});
    assert!(
        matches!(apply(&server.app, &unknown.to_string(), &env).await, Err(KickstartError::UnknownVariable(name)) if name == "nope")
    );
    assert!(matches!(
        apply(&server.app, "{not json", &env).await,
        Err(KickstartError::Malformed(_))
    ));
}

#[tokio::test]
async fn a_kickstart_file_may_use_the_whole_management_api() {
    let server = pristine().await;
    let env = |name: &str| match name {
        "KICKSTART_API_KEY" => Some(SAMPLE_KEY.to_owned()),
        "BILLING_HMAC_SECRET" => Some("b".repeat(64)),
        _ => None,
    };
    let file = json!({
        "variables": {
            "tenantId": "#{UUID()}", "applicationId": "#{UUID()}", "userId": "#{UUID()}",
            "signingKeyId": "#{UUID()}", "sharedKeyId": "#{UUID()}", "templateId": "#{UUID()}",
            "roleId": "#{UUID()}", "apiKeyId": "#{UUID()}"
        },
        "apiKeys": [{"key": "#{ENV.KICKSTART_API_KEY}"}],
        "requests": [
            {"method": "POST", "url": "/api/tenant/#{tenantId}", "body": {"tenant": {"name": "Hooli"}}},
            {"method": "POST", "url": "/api/key/generate/#{signingKeyId}", "body": {"key": {"algorithm": "ES384", "name": "Hooli signing"}}},
            {"method": "POST", "url": "/api/key/import/#{sharedKeyId}", "body": {"key": {"algorithm": "HS512", "secret": "#{ENV.BILLING_HMAC_SECRET}"}}},
            {"method": "PATCH", "url": "/api/tenant/#{tenantId}", "body": {"tenant": {"jwtConfiguration": {"accessTokenKeyId": "#{signingKeyId}"}}}},
            {"method": "POST", "url": "/api/email/template/#{templateId}", "tenantId": "#{tenantId}", "body": {"emailTemplate": {
                "name": "Hooli link",
                "defaultSubject": "Sign in to ${application.name}",
                "defaultTextTemplate": "[#if user.firstName??]Hi ${user.firstName},[/#if]\n${url}\n",
                "defaultHtmlTemplate": "<p><a href=\"${url}\">Sign in</a></p>"
            }}},
            {"method": "POST", "url": "/api/application/#{applicationId}", "tenantId": "#{tenantId}", "body": {"application": {
                "name": "Hooli XYZ",
                "passwordlessConfiguration": {"enabled": true, "emailLoginStrategy": "ClickableLink"},
                "emailConfiguration": {"passwordlessEmailTemplateId": "#{templateId}"},
                "loginConfiguration": {"generateRefreshTokens": true}
            }}},
            {"method": "POST", "url": "/api/application/#{applicationId}/role/#{roleId}", "tenantId": "#{tenantId}", "body": {"role": {"name": "editor"}}},
            {"method": "POST", "url": "/api/user/#{userId}", "tenantId": "#{tenantId}", "body": {"user": {"email": "gavin@hooli.example", "firstName": "Gavin"}}},
            {"method": "POST", "url": "/api/user/registration/#{userId}", "tenantId": "#{tenantId}", "body": {"registration": {"applicationId": "#{applicationId}", "roles": ["editor"]}}},
            {"method": "PATCH", "url": "/api/user/#{userId}", "tenantId": "#{tenantId}", "body": {"user": {"data": {"title": "CEO"}}}},
            {"method": "POST", "url": "/api/api-key/#{apiKeyId}", "body": {"apiKey": {"key": "hooli-start-key-0123456789abcdef", "tenantId": "#{tenantId}",
                "permissions": {"endpoints": {"/api/passwordless/start": ["POST"]}}}}}
        ]
    });
    let outcome = apply_if_pristine(&server.app, &file.to_string(), &env)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        KickstartOutcome::Applied {
            api_keys: 1,
            requests: 11
        }
    );

    // The tenant-locked start key made by a request starts a login in that tenant; the code
    // is emailed with the FreeMarker template and logs in with the imported tenant's ES384 key.
    let applications = server.app.store.applications().await.unwrap();
    let app = applications.iter().find(|a| a.name == "Hooli XYZ").unwrap();
    let started = server
        .post(
            "/api/passwordless/start",
            Some("hooli-start-key-0123456789abcdef"),
            json!({"applicationId": app.id, "loginId": "gavin@hooli.example"}),
        )
        .await;
    started.assert_status(200);
    let code = started.json()["code"].as_str().unwrap().to_owned();
    server.send(json!({"code": code})).await.assert_status(200);
    let email = server.emails().await.pop().unwrap();
    assert_eq!(email.subject, "Sign in to Hooli XYZ");
    assert_eq!(email.link_code(), code);
    let login = server.login(json!({"code": code})).await.json();
    let header = jsonwebtoken::decode_header(login["token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES384);
    assert_eq!(login["user"]["data"]["title"], "CEO");
}
