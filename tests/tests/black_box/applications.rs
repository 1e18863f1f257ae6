//! Applications through the management API: retrieve, list, replace, patch, roles, deactivate,
//! reactivate and hard delete, each within the caller's tenant (S22).

use crate::support::*;
use serde_json::json;

const LOCKED_KEY: &str = "hooli-key-12345678901234";

#[tokio::test]
async fn s22_a_tenant_locked_key_sees_and_changes_only_its_tenants_applications() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let hooli = server.tenant("Hooli").await;
    let hooli_app = server.application(json!({"tenantId": hooli})).await;
    server.api_key(LOCKED_KEY, &[], Some(&hooli)).await;

    let listed = server.get("/api/application", Some(LOCKED_KEY)).await;
    listed.assert_status(200);
    let ids: Vec<String> = listed.json()["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, std::slice::from_ref(&hooli_app));

    let before = server.store_fingerprint().await;
    let other = format!("/api/application/{app}");
    for (method, body) in [
        ("GET", None),
        ("PUT", Some(json!({"application": {"name": "Mine now"}}))),
        ("PATCH", Some(json!({"application": {"name": "Mine now"}}))),
        ("DELETE", None),
    ] {
        let response = server.call(method, &other, LOCKED_KEY, body).await;
        assert_eq!(response.status.as_u16(), 404, "{method}: {}", response.text);
    }
    let role = server
        .call(
            "POST",
            &format!("{other}/role"),
            LOCKED_KEY,
            Some(json!({"role": {"name": "spy"}})),
        )
        .await;
    role.assert_status(404);
    server
        .call(
            "DELETE",
            &format!("{other}?hardDelete=true"),
            LOCKED_KEY,
            None,
        )
        .await
        .assert_status(404);
    assert_eq!(before, server.store_fingerprint().await, "nothing changed");

    // An application cannot be moved into another tenant either.
    server
        .call(
            "PATCH",
            &format!("/api/application/{hooli_app}"),
            ADMIN_KEY,
            Some(json!({"application": {"tenantId": server.default_tenant()}})),
        )
        .await
        .assert_error_code("[invalid]application.tenantId");
}

#[tokio::test]
async fn an_update_keeps_what_is_not_the_callers_to_change() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"roles": [{"name": "user", "isDefault": true}]}))
        .await;
    let path = format!("/api/application/{app}");
    let before = server.get(&path, Some(ADMIN_KEY)).await.json()["application"].clone();

    let put = server.call("PUT",
        &path,
        ADMIN_KEY,
        Some(json!({"application": {
            "name": "Renamed",
            "id": "3c219e58-ed0e-4b18-ad48-f4f92793ae32",
            "roles": [{"name": "admin", "isSuperRole": true}],
            "passwordlessConfiguration": {"enabled": true},
            "oauthConfiguration": {"clientId": "chosen-by-caller", "clientSecretHash": "ab".repeat(32)}
        }})),
    )
    .await;
    put.assert_status(200);
    let after = put.json()["application"].clone();
    assert_eq!(after["name"], "Renamed");
    for kept in ["id", "tenantId", "insertInstant", "roles"] {
        assert_eq!(after[kept], before[kept], "{kept}");
    }
    assert_eq!(after["oauthConfiguration"]["clientId"], app.as_str());
    assert!(after["oauthConfiguration"]
        .get("clientSecretHash")
        .is_none());
    assert_eq!(
        server.get(&path, Some(ADMIN_KEY)).await.json()["application"],
        after
    );

    server
        .call("PUT", &path, ADMIN_KEY, Some(json!({"application": {}})))
        .await
        .assert_error_code("[blank]application.name");
    server
        .call("PUT", &path, ADMIN_KEY, Some(json!({})))
        .await
        .assert_error_code("[missing]application");
}

#[tokio::test]
async fn fusionauth_properties_are_kept_and_unknown_ones_refused() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let path = format!("/api/application/{app}");
    let kept = json!({"application": {
        "data": {"plan": "gold"},
        "themeId": "3c219e58-ed0e-4b18-ad48-f4f92793ae32",
        "loginConfiguration": {"allowTokenRefresh": true},
        "oauthConfiguration": {"logoutBehavior": "RedirectOnly", "consentMode": "AlwaysPrompt"},
        "jwtConfiguration": {"refreshTokenUsagePolicy": "OneTimeUse"},
        "registrationConfiguration": {"enabled": false}
    }});
    server
        .call("PATCH", &path, ADMIN_KEY, Some(kept.clone()))
        .await
        .assert_status(200);
    let shown = server.get(&path, Some(ADMIN_KEY)).await.json();
    let mut expected = shown.clone();
    merge(&mut expected, kept);
    assert_eq!(shown, expected, "every property sent is returned");

    let before = server.store_fingerprint().await;
    for (body, code) in [
        (
            json!({"application": {"colour": "blue"}}),
            "[invalidJSON]application.colour",
        ),
        (
            json!({"application": {"oauthConfiguration": {"colour": "blue"}}}),
            "[invalidJSON]application.oauthConfiguration.colour",
        ),
        (
            json!({"application": {"name": 7}}),
            "[invalidJSON]application.name",
        ),
        (
            json!({"application": {"unverified": {"behavior": "Gated"}}}),
            "[notSupported]application.unverified.behavior",
        ),
        (
            json!({"application": {"multiFactorConfiguration": {"trustPolicy": "Sometimes"}}}),
            "[invalidJSON]application.multiFactorConfiguration.trustPolicy",
        ),
        (
            json!({"application": {"multiFactorConfiguration": {"colour": "blue"}}}),
            "[invalidJSON]application.multiFactorConfiguration.colour",
        ),
    ] {
        server
            .call("PATCH", &path, ADMIN_KEY, Some(body))
            .await
            .assert_error_code(code);
    }
    assert_eq!(before, server.store_fingerprint().await, "nothing changed");
}

#[tokio::test]
async fn a_deactivated_application_starts_no_login_until_it_is_reactivated() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    server
        .user(&app, "richard@piedpiper.example", json!({}))
        .await;
    let path = format!("/api/application/{app}");
    let pending = server.code(&app, "richard@piedpiper.example").await;

    server
        .call("DELETE", &path, ADMIN_KEY, None)
        .await
        .assert_status(200);
    let shown = server.get(&path, Some(ADMIN_KEY)).await.json()["application"].clone();
    assert_eq!(shown["active"], false);
    let inactive = server
        .get("/api/application?inactive=true", Some(ADMIN_KEY))
        .await;
    assert_eq!(inactive.json()["applications"][0]["id"], app.as_str());
    let active = server.get("/api/application", Some(ADMIN_KEY)).await;
    assert_eq!(active.json()["applications"], json!([]));
    server
        .start_login(&app, "richard@piedpiper.example", json!({}))
        .await
        .assert_status(400);
    // A code started before it was deactivated no longer signs in either.
    server
        .login(json!({"code": pending}))
        .await
        .assert_status(404);

    server
        .call("PUT", &format!("{path}?reactivate=true"), ADMIN_KEY, None)
        .await
        .assert_status(200);
    let code = server.code(&app, "richard@piedpiper.example").await;
    server.login(json!({"code": code})).await.assert_status(200);
}

#[tokio::test]
async fn a_hard_delete_removes_the_application_and_its_registrations_only() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"roles": [{"name": "user"}]}))
        .await;
    let kept = server
        .application(json!({"roles": [{"name": "user"}]}))
        .await;
    let user = server
        .user(&app, "richard@piedpiper.example", json!({}))
        .await;
    server
        .post(
            &format!("/api/user/registration/{user}"),
            Some(ADMIN_KEY),
            json!({"registration": {"applicationId": kept}}),
        )
        .await
        .assert_status(200);

    server
        .call(
            "DELETE",
            &format!("/api/application/{app}?hardDelete=true"),
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(200);
    server
        .get(&format!("/api/application/{app}"), Some(ADMIN_KEY))
        .await
        .assert_status(404);
    let registrations = server
        .get(&format!("/api/user/{user}"), Some(ADMIN_KEY))
        .await
        .json()["user"]["registrations"]
        .clone();
    let left: Vec<&str> = registrations
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["applicationId"].as_str().unwrap())
        .collect();
    assert_eq!(left, [kept.as_str()]);
    let code = server.code(&kept, "richard@piedpiper.example").await;
    server.login(json!({"code": code})).await.assert_status(200);
}

#[tokio::test]
async fn roles_are_added_replaced_patched_and_removed_one_by_one() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"roles": [{"name": "user"}]}))
        .await;
    let roles = format!("/api/application/{app}/role");

    let made = server
        .call(
            "POST",
            &roles,
            ADMIN_KEY,
            Some(json!({"role": {"name": "editor"}})),
        )
        .await;
    made.assert_status(200);
    let editor = made.json()["role"]["id"].as_str().unwrap().to_owned();
    server
        .call(
            "POST",
            &roles,
            ADMIN_KEY,
            Some(json!({"role": {"name": "editor"}})),
        )
        .await
        .assert_error_code("[duplicate]role.name");
    server
        .call(
            "POST",
            &roles,
            ADMIN_KEY,
            Some(json!({"role": {"name": " "}})),
        )
        .await
        .assert_error_code("[blank]role.name");
    let replaced = server
        .call(
            "PUT",
            &format!("{roles}/{editor}"),
            ADMIN_KEY,
            Some(json!({"role": {"name": "writer", "isDefault": true}})),
        )
        .await;
    replaced.assert_status(200);
    assert_eq!(replaced.json()["role"]["id"], editor.as_str());
    let patched = server
        .call(
            "PATCH",
            &format!("{roles}/{editor}"),
            ADMIN_KEY,
            Some(json!({"role": {"description": "Writes"}})),
        )
        .await;
    assert_eq!(patched.json()["role"]["name"], "writer");
    assert_eq!(patched.json()["role"]["isDefault"], true);
    server
        .call("DELETE", &format!("{roles}/{editor}"), ADMIN_KEY, None)
        .await
        .assert_status(200);
    server
        .call("DELETE", &format!("{roles}/{editor}"), ADMIN_KEY, None)
        .await
        .assert_status(404);
    let names: Vec<String> = server
        .get(&format!("/api/application/{app}"), Some(ADMIN_KEY))
        .await
        .json()["application"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["user"]);
}
