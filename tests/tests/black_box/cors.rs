//! CORS for browser callers of the API: FusionAuth's system-wide `corsConfiguration`, managed
//! through `/api/system-configuration`, answers every preflight and marks allowed answers.

use crate::support::*;
use serde_json::json;

const SPA: &str = "https://spa.example";

async fn preflight(server: &TestServer, origin: &str, method: &str, headers: &str) -> Response {
    server
        .request(
            "OPTIONS",
            "/api/passwordless/login",
            None,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", method),
                ("Access-Control-Request-Headers", headers),
            ],
            None,
        )
        .await
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers.get(name).map(|v| v.to_str().unwrap())
}

async fn enable_cors(server: &TestServer, cors: serde_json::Value) -> Response {
    server
        .admin(
            "PATCH",
            "/api/system-configuration",
            json!({"systemConfiguration": {"corsConfiguration": cors}}),
        )
        .await
}

#[tokio::test]
async fn cors_is_off_until_the_system_configuration_turns_it_on() {
    let server = TestServer::start().await;
    let system = server
        .get("/api/system-configuration", Some(ADMIN_KEY))
        .await;
    system.assert_status(200);
    let cors = &system.json()["systemConfiguration"]["corsConfiguration"];
    assert_eq!(cors["enabled"], false);
    assert_eq!(cors["allowCredentials"], false);
    assert_eq!(cors["allowedMethods"], json!(["GET", "OPTIONS"]));
    assert_eq!(cors["preflightMaxAgeInSeconds"], 1800);
    assert!(cors["allowedHeaders"]
        .as_array()
        .unwrap()
        .contains(&json!("X-FusionAuth-TenantId")));

    let refused = preflight(&server, SPA, "POST", "Content-Type").await;
    refused.assert_status(403);
    assert!(refused.text.is_empty());
    assert_eq!(header(&refused, "access-control-allow-origin"), None);
    // An OPTIONS that is no preflight is a method no route serves.
    server
        .request("OPTIONS", "/api/passwordless/login", None, &[], None)
        .await
        .assert_status(405);
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_and_its_answers_marked() {
    let (server, application) = TestServer::with_user("a@example.com").await;
    enable_cors(
        &server,
        json!({"enabled": true, "allowedOrigins": [SPA], "allowedMethods": ["POST", "OPTIONS"],
               "exposedHeaders": ["Content-Length"], "preflightMaxAgeInSeconds": 600}),
    )
    .await
    .assert_status(200);

    let allowed = preflight(&server, SPA, "POST", "content-type, x-fusionauth-tenantid").await;
    allowed.assert_status(204);
    assert_eq!(header(&allowed, "access-control-allow-origin"), Some(SPA));
    assert_eq!(
        header(&allowed, "access-control-allow-methods"),
        Some("POST,OPTIONS")
    );
    assert_eq!(header(&allowed, "access-control-max-age"), Some("600"));
    assert_eq!(header(&allowed, "vary"), Some("Origin"));
    assert_eq!(header(&allowed, "access-control-allow-credentials"), None);
    for (origin, method, headers) in [
        ("https://evil.example", "POST", "Content-Type"),
        (SPA, "DELETE", "Content-Type"),
        (SPA, "POST", "X-Not-Allowed"),
    ] {
        preflight(&server, origin, method, headers)
            .await
            .assert_status(403);
    }

    let code = server.code(&application, "a@example.com").await;
    let login = server
        .request(
            "POST",
            "/api/passwordless/login",
            None,
            &[("Origin", SPA)],
            Some(json!({"code": code}).to_string().into_bytes()),
        )
        .await;
    login.assert_status(200);
    assert_eq!(header(&login, "access-control-allow-origin"), Some(SPA));
    assert_eq!(
        header(&login, "access-control-expose-headers"),
        Some("Content-Length")
    );
    // Another origin's request is answered, without CORS headers: its page cannot read it.
    let foreign = server
        .request(
            "POST",
            "/api/passwordless/login",
            None,
            &[("Origin", "https://evil.example")],
            Some(json!({"code": "unknown"}).to_string().into_bytes()),
        )
        .await;
    foreign.assert_status(404);
    assert_eq!(header(&foreign, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn credentials_are_allowed_only_for_named_origins() {
    let server = TestServer::start().await;
    enable_cors(
        &server,
        json!({"enabled": true, "allowedOrigins": ["*"], "allowCredentials": true}),
    )
    .await
    .assert_error_code("[invalid]systemConfiguration.corsConfiguration.allowCredentials");
    enable_cors(
        &server,
        json!({"enabled": true, "allowedOrigins": [SPA], "allowCredentials": true}),
    )
    .await
    .assert_status(200);
    let allowed = preflight(&server, SPA, "GET", "").await;
    allowed.assert_status(204);
    assert_eq!(
        header(&allowed, "access-control-allow-credentials"),
        Some("true")
    );
}

#[tokio::test]
async fn what_would_reach_a_header_is_refused_when_saved_and_changes_nothing() {
    let server = TestServer::start().await;
    enable_cors(&server, json!({"enabled": true, "allowedOrigins": [SPA]}))
        .await
        .assert_status(200);
    let before = server
        .get("/api/system-configuration", Some(ADMIN_KEY))
        .await;
    for (cors, code) in [
        (
            json!({"allowedOrigins": ["spa.example"]}),
            "[invalid]systemConfiguration.corsConfiguration.allowedOrigins",
        ),
        (
            json!({"allowedOrigins": ["https://spa.example/app"]}),
            "[invalid]systemConfiguration.corsConfiguration.allowedOrigins",
        ),
        (
            json!({"allowedHeaders": ["X-Ok\r\nSet-Cookie: a=b"]}),
            "[invalid]systemConfiguration.corsConfiguration.allowedHeaders",
        ),
        (
            json!({"exposedHeaders": ["a b"]}),
            "[invalid]systemConfiguration.corsConfiguration.exposedHeaders",
        ),
        (
            json!({"allowedMethods": ["TRACE"]}),
            "[invalidJSON]systemConfiguration.corsConfiguration.allowedMethods[0]",
        ),
        (
            json!({"allowOrigins": [SPA]}),
            "[invalidJSON]systemConfiguration.corsConfiguration.allowOrigins",
        ),
    ] {
        enable_cors(&server, cors).await.assert_error_code(code);
    }
    server
        .admin(
            "PUT",
            "/api/system-configuration",
            json!({"systemConfiguration": {"nonsense": true}}),
        )
        .await
        .assert_error_code("[invalidJSON]systemConfiguration.nonsense");
    server
        .admin("PUT", "/api/system-configuration", json!({}))
        .await
        .assert_error_code("[missing]systemConfiguration");
    let after = server
        .get("/api/system-configuration", Some(ADMIN_KEY))
        .await;
    assert_eq!(after.json(), before.json());
}

#[tokio::test]
async fn s22_only_an_unrestricted_key_changes_what_holds_for_every_tenant() {
    let server = TestServer::start().await;
    let tenant = server.tenant("Hooli").await;
    server
        .api_key("tenant-locked-key-0123456789", &[], Some(&tenant))
        .await;
    let locked = server
        .call(
            "PATCH",
            "/api/system-configuration",
            "tenant-locked-key-0123456789",
            Some(json!({"systemConfiguration": {"corsConfiguration": {"enabled": true}}})),
        )
        .await;
    locked.assert_status(401);
    server
        .get(
            "/api/system-configuration",
            Some("tenant-locked-key-0123456789"),
        )
        .await
        .assert_status(200);
    let kept = server
        .admin(
            "PUT",
            "/api/system-configuration",
            json!({"systemConfiguration": {"reportTimezone": "America/Denver", "data": {"a": 1}}}),
        )
        .await;
    kept.assert_status(200);
    let system = kept.json()["systemConfiguration"].clone();
    assert_eq!(system["reportTimezone"], "America/Denver");
    assert_eq!(system["data"], json!({"a": 1}));
    assert_eq!(system["corsConfiguration"]["enabled"], false);
}
