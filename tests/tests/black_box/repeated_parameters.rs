//! A parameter sent twice is refused wherever it is read, not settled by whichever copy a
//! parser happens to keep (RFC 6749 section 3.1 for OAuth requests; the same rule for the API's
//! queries and the hosted pages' forms).

use crate::support::*;
use serde_json::json;

const CALLBACK: &str = "https://app.example/callback";

async fn post_form(server: &TestServer, path: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", server.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_parameter_sent_twice() {
    let server = TestServer::start().await;
    let response = post_form(
        &server,
        "/oauth2/token",
        "grant_type=refresh_token&refresh_token=a&refresh_token=b",
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "A parameter appears more than once."
    );
    // Parameters the endpoint does not read may repeat (RFC 6749 ignores unknown ones).
    let response = post_form(&server, "/oauth2/token", "grant_type=refresh_token&x=1&x=2").await;
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_reason"], "missing_refresh_token");
}

#[tokio::test]
async fn an_authorization_request_with_a_parameter_sent_twice_gets_the_error_page() {
    let server = TestServer::start().await;
    let client = server
        .application(json!({"oauthConfiguration": {"authorizedRedirectURLs": [CALLBACK]}}))
        .await;
    let authorize = |extra: &str| {
        format!(
            "{}/oauth2/authorize?client_id={client}&redirect_uri={}&response_type=code{extra}",
            server.base,
            form_urlencoded::byte_serialize(CALLBACK.as_bytes()).collect::<String>()
        )
    };
    let fine = reqwest::get(authorize("&state=one")).await.unwrap();
    assert_eq!(fine.status(), 200);
    let twice = reqwest::get(authorize("&state=one&state=two"))
        .await
        .unwrap();
    assert_eq!(twice.status(), 400, "never a redirect, never a form");
    assert!(twice.headers().get("location").is_none());
    let html = twice.text().await.unwrap();
    assert!(
        html.contains("a parameter appears more than once"),
        "{html}"
    );
}

#[tokio::test]
async fn an_api_query_with_a_parameter_sent_twice_is_a_field_error() {
    let server = TestServer::start().await;
    let response = server
        .get(
            "/api/user?email=a%40example.com&email=b%40example.com",
            Some(ADMIN_KEY),
        )
        .await;
    response.assert_status(400);
    response.assert_error_code("[invalid]email");
    let response = server
        .get("/api/application?inactive=sometimes", Some(ADMIN_KEY))
        .await;
    response.assert_status(400);
    response.assert_error_code("[invalid]inactive");
}
