//! Users through the management API: create, replace, patch, deactivate, reactivate, delete
//! and search, each within the caller's tenant (S22).

use crate::support::*;
use serde_json::{json, Value};

const LOCKED_KEY: &str = "hooli-key-12345678901234";

fn ids(response: &Response) -> Vec<String> {
    response.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn s22_a_tenant_locked_key_sees_and_changes_only_its_tenants_users() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let richard = server
        .user(&app, "richard@piedpiper.example", json!({}))
        .await;
    let hooli = server.tenant("Hooli").await;
    let hooli_app = server.application(json!({"tenantId": hooli})).await;
    let gavin = server
        .user(&hooli_app, "gavin@hooli.example", json!({}))
        .await;
    server.api_key(LOCKED_KEY, &[], Some(&hooli)).await;

    let search = server
        .call(
            "POST",
            "/api/user/search",
            LOCKED_KEY,
            Some(json!({"search": {"queryString": "*"}})),
        )
        .await;
    search.assert_status(200);
    assert_eq!(ids(&search), std::slice::from_ref(&gavin));
    assert_eq!(search.json()["total"], 1);
    let everyone = server
        .call(
            "POST",
            "/api/user/search",
            ADMIN_KEY,
            Some(json!({"search": {}})),
        )
        .await;
    assert_eq!(
        everyone.json()["total"],
        2,
        "an unrestricted key searches every tenant"
    );

    let before = server.store_fingerprint().await;
    let other = format!("/api/user/{richard}");
    for (method, path, body) in [
        ("GET", other.clone(), None),
        (
            "PUT",
            other.clone(),
            Some(json!({"user": {"email": "mine@hooli.example"}})),
        ),
        (
            "PATCH",
            other.clone(),
            Some(json!({"user": {"firstName": "Mine"}})),
        ),
        ("DELETE", other.clone(), None),
        ("DELETE", format!("{other}?hardDelete=true"), None),
        ("PUT", format!("/api/user/reactivate/{richard}"), None),
        (
            "GET",
            "/api/user?email=richard%40piedpiper.example".to_owned(),
            None,
        ),
    ] {
        let response = server.call(method, &path, LOCKED_KEY, body).await;
        assert_eq!(
            response.status.as_u16(),
            404,
            "{method} {path}: {}",
            response.text
        );
    }
    let by_ids = server
        .get(&format!("/api/user/search?ids={richard}"), Some(LOCKED_KEY))
        .await;
    assert_eq!(by_ids.json()["total"], 0);
    server
        .call(
            "POST",
            "/api/user",
            LOCKED_KEY,
            Some(json!({"user": {"email": "x@example.com", "tenantId": server.default_tenant()}})),
        )
        .await
        .assert_error_code("[invalid]user.tenantId");
    assert_eq!(before, server.store_fingerprint().await, "nothing changed");
}

#[tokio::test]
async fn a_deactivated_user_cannot_sign_in_until_reactivated_and_a_deleted_one_never() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let user = server
        .user(&app, "richard@piedpiper.example", json!({}))
        .await;
    let path = format!("/api/user/{user}");

    server
        .call("DELETE", &path, ADMIN_KEY, None)
        .await
        .assert_status(200);
    assert_eq!(
        server.get(&path, Some(ADMIN_KEY)).await.json()["user"]["active"],
        false
    );
    let code = server.code(&app, "richard@piedpiper.example").await;
    server.login(json!({"code": code})).await.assert_status(423);

    server
        .call(
            "PUT",
            &format!("/api/user/reactivate/{user}"),
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(200);
    let code = server.code(&app, "richard@piedpiper.example").await;
    server.login(json!({"code": code})).await.assert_status(200);

    let pending = server.code(&app, "richard@piedpiper.example").await;
    server
        .call(
            "DELETE",
            &format!("{path}?hardDelete=true"),
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(200);
    server
        .login(json!({"code": pending}))
        .await
        .assert_status(404);
    server.get(&path, Some(ADMIN_KEY)).await.assert_status(404);
    server
        .start_login(&app, "richard@piedpiper.example", json!({}))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn an_update_keeps_identity_registrations_and_verification() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let user = server
        .user(&app, "richard@piedpiper.example", json!({}))
        .await;
    let path = format!("/api/user/{user}");
    let before = server.get(&path, Some(ADMIN_KEY)).await.json()["user"].clone();

    let put = server
        .call(
            "PUT",
            &path,
            ADMIN_KEY,
            Some(json!({"user": {
                "email": "Richard.Hendricks@PiedPiper.example",
                "id": "3c219e58-ed0e-4b18-ad48-f4f92793ae32",
                "verified": true,
                "registrations": [],
                "password": "dropped"
            }})),
        )
        .await;
    put.assert_status(200);
    let after = put.json()["user"].clone();
    assert_eq!(
        after["email"], "richard.hendricks@piedpiper.example",
        "stored lowercased"
    );
    for kept in [
        "id",
        "tenantId",
        "insertInstant",
        "registrations",
        "verified",
    ] {
        assert_eq!(after[kept], before[kept], "{kept}");
    }
    assert!(after.get("password").is_none());
    let code = server
        .code(&app, "richard.hendricks@piedpiper.example")
        .await;
    server.login(json!({"code": code})).await.assert_status(200);
    server
        .call(
            "PATCH",
            &path,
            ADMIN_KEY,
            Some(json!({"user": {"colour": "blue"}})),
        )
        .await
        .assert_error_code("[invalidJSON]user.colour");
    server
        .call(
            "PUT",
            &path,
            ADMIN_KEY,
            Some(json!({"user": {"firstName": "Nobody"}})),
        )
        .await
        .assert_error_code("[blank]user.email");
}

#[tokio::test]
async fn search_matches_prefixes_of_email_username_and_names_page_by_page() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    for (email, first) in [
        ("richard@piedpiper.example", "Richard"),
        ("dinesh@piedpiper.example", "Dinesh"),
        ("gilfoyle@piedpiper.example", "Bertram"),
        ("gavin@hooli.example", "Gavin"),
    ] {
        server.user(&app, email, json!({"firstName": first})).await;
    }
    let search = |query: Value| {
        server.call(
            "POST",
            "/api/user/search",
            ADMIN_KEY,
            Some(json!({"search": query})),
        )
    };

    let piper = search(json!({"queryString": "piedpiper*"})).await;
    assert_eq!(
        piper.json()["total"],
        0,
        "a prefix of a word, not a substring"
    );
    let richard = search(json!({"queryString": "RICH"})).await;
    assert_eq!(richard.json()["total"], 1);
    assert_eq!(
        richard.json()["users"][0]["email"],
        "richard@piedpiper.example"
    );
    let bertram = search(json!({"queryString": "bert g*"})).await;
    assert_eq!(
        bertram.json()["users"][0]["email"],
        "gilfoyle@piedpiper.example"
    );

    let first = search(json!({"queryString": "*", "numberOfResults": 3})).await;
    let second = search(json!({"queryString": "*", "numberOfResults": 3, "startRow": 3})).await;
    assert_eq!(first.json()["total"], 4);
    assert_eq!(ids(&first).len(), 3);
    assert_eq!(ids(&second).len(), 1);
    assert!(
        !ids(&first).contains(&ids(&second)[0]),
        "pages do not overlap"
    );
    let by_query = server
        .get(
            "/api/user/search?queryString=din&numberOfResults=5",
            Some(ADMIN_KEY),
        )
        .await;
    assert_eq!(
        by_query.json()["users"][0]["email"],
        "dinesh@piedpiper.example"
    );

    search(json!({"query": "{\"match_all\": {}}"}))
        .await
        .assert_error_code("[notSupported]search.query");
    search(json!({"numberOfResults": 100000}))
        .await
        .assert_error_code("[invalid]search.numberOfResults");
}

#[tokio::test]
async fn registrations_are_read_replaced_patched_and_removed_within_the_tenant() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"roles": [{"name": "user"}, {"name": "admin"}]}))
        .await;
    let user = server
        .user(&app, "richard@piedpiper.example", json!({}))
        .await;
    let hooli = server.tenant("Hooli").await;
    server.api_key(LOCKED_KEY, &[], Some(&hooli)).await;
    let path = format!("/api/user/registration/{user}/{app}");

    let shown = server.get(&path, Some(ADMIN_KEY)).await;
    shown.assert_status(200);
    assert_eq!(shown.json()["registration"]["verified"], true);
    let before = server.store_fingerprint().await;
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(json!({"registration": {"roles": ["admin"]}}))),
        ("PATCH", Some(json!({"registration": {"roles": ["admin"]}}))),
        ("DELETE", None),
    ] {
        let response = server.call(method, &path, LOCKED_KEY, body).await;
        assert_eq!(response.status.as_u16(), 404, "{method}: {}", response.text);
    }
    let unknown_user = format!("/api/user/registration/3c219e58-ed0e-4b18-ad48-f4f92793ae32/{app}");
    server
        .get(&unknown_user, Some(ADMIN_KEY))
        .await
        .assert_status(404);
    server
        .call(
            "PUT",
            &path,
            ADMIN_KEY,
            Some(json!({"registration": {"roles": ["god"]}})),
        )
        .await
        .assert_error_code("[invalid]registration.roles");
    assert_eq!(before, server.store_fingerprint().await, "nothing changed");

    let promoted = server
        .call(
            "PATCH",
            &path,
            ADMIN_KEY,
            Some(json!({"registration": {"roles": ["admin"]}})),
        )
        .await;
    promoted.assert_status(200);
    assert_eq!(promoted.json()["registration"]["roles"], json!(["admin"]));
    let code = server.code(&app, "richard@piedpiper.example").await;
    let login = server.login(json!({"code": code})).await;
    login.assert_status(200);
    let claims = verified_claims(&server, login.json()["token"].as_str().unwrap(), &app).await;
    assert_eq!(claims["roles"], json!(["admin"]));

    server
        .call("DELETE", &path, ADMIN_KEY, None)
        .await
        .assert_status(200);
    server.get(&path, Some(ADMIN_KEY)).await.assert_status(404);
    let code = server.code(&app, "richard@piedpiper.example").await;
    server.login(json!({"code": code})).await.assert_status(202);
}
