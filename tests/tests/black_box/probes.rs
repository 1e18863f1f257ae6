//! What load balancers, uptime probes and strict OpenID clients ask before anything else: the
//! health and status probes, the version, and a discovery document that names only what is
//! served.

use crate::support::*;
use serde_json::Value;

#[tokio::test]
async fn the_health_probe_answers_200_with_no_body_and_no_key() {
    let server = TestServer::start().await;
    let response = server.get("/api/health", None).await;
    response.assert_status(200);
    assert!(response.text.is_empty(), "FusionAuth's health has no body");
}

#[tokio::test]
async fn the_status_probe_answers_one_value_without_a_key() {
    let server = TestServer::start().await;
    let response = server.get("/api/status", None).await;
    response.assert_status(200);
    assert_eq!(response.json(), serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn the_version_needs_an_api_key() {
    let server = TestServer::start().await;
    server
        .get("/api/system/version", None)
        .await
        .assert_status(401);
    let response = server.get("/api/system/version", Some(ADMIN_KEY)).await;
    response.assert_status(200);
    assert_eq!(response.json()["version"], env!("CARGO_PKG_VERSION"));
}

/// A strict relying party refuses to log out or introspect when discovery leaves those
/// endpoints out, and sends `request_uri` when discovery does not say it is unsupported.
#[tokio::test]
async fn discovery_names_every_endpoint_served_and_nothing_else() {
    let server = TestServer::start().await;
    let document: Value = reqwest::get(format!("{}/.well-known/openid-configuration", server.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let endpoints: Vec<(&str, reqwest::Method)> = vec![
        ("authorization_endpoint", reqwest::Method::GET),
        ("token_endpoint", reqwest::Method::POST),
        ("userinfo_endpoint", reqwest::Method::GET),
        ("end_session_endpoint", reqwest::Method::GET),
        ("introspection_endpoint", reqwest::Method::POST),
        ("jwks_uri", reqwest::Method::GET),
    ];
    let named: Vec<&String> = document
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with("_endpoint") || k.ends_with("_uri"))
        .collect();
    assert_eq!(
        named.len(),
        endpoints.len(),
        "discovery names exactly the endpoints checked here: {named:?}"
    );
    for (name, method) in endpoints {
        let url = document[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} is named"));
        let path = url.strip_prefix(PUBLIC_URL).unwrap();
        let status = client
            .request(method, format!("{}{path}", server.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(
            status != 404 && status != 405,
            "{name} ({path}) is served, got {status}"
        );
    }
    for unsupported in [
        "request_parameter_supported",
        "request_uri_parameter_supported",
        "claims_parameter_supported",
        "backchannel_logout_supported",
        "frontchannel_logout_supported",
    ] {
        assert_eq!(document[unsupported], false, "{unsupported}");
    }
}
