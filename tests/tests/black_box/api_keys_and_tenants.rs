//! API keys (S21), tenant scoping (S22) and the management API.

use crate::support::*;
use serde_json::json;

async fn key(server: &TestServer, key: &str, endpoints: &[(&str, &[&str])], tenant: Option<&str>) {
    server.api_key(key, endpoints, tenant).await;
}

async fn other_tenant(server: &TestServer) -> String {
    server.tenant("Hooli").await
}

#[tokio::test]
async fn s21_a_missing_wrong_or_oversized_key_gets_401_with_an_empty_body() {
    let (server, app) = TestServer::with_user("a@example.com").await;
    let body = json!({"applicationId": app, "loginId": "a@example.com"});
    let long_key = "k".repeat(300);
    let bearer = format!("Bearer {ADMIN_KEY}");
    for key in [
        None,
        Some("wrong-key"),
        Some(long_key.as_str()),
        Some(bearer.as_str()),
    ] {
        let response = server
            .post("/api/passwordless/start", key, body.clone())
            .await;
        response.assert_status(401);
        assert!(response.text.is_empty());
    }
    server
        .get("/api/user?email=a%40example.com", Some("wrong-key"))
        .await
        .assert_status(401);
}

#[tokio::test]
async fn s21_a_start_only_key_can_start_and_do_nothing_else() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let user = server.user(&app, "a@example.com", json!({})).await;
    key(
        &server,
        "start-only-key-1234567890",
        &[("/api/passwordless/start", &["POST"])],
        None,
    )
    .await;
    let response = server
        .post(
            "/api/passwordless/start",
            Some("start-only-key-1234567890"),
            json!({"applicationId": app, "loginId": "a@example.com"}),
        )
        .await;
    response.assert_status(200);
    server
        .get(
            &format!("/api/user/{user}"),
            Some("start-only-key-1234567890"),
        )
        .await
        .assert_status(401);
    server
        .get(
            "/api/user?email=a%40example.com",
            Some("start-only-key-1234567890"),
        )
        .await
        .assert_status(401);
    let create = json!({"application": {"name": "Sneaky"}});
    server
        .request(
            "POST",
            "/api/application",
            Some("start-only-key-1234567890"),
            &[],
            Some(create.to_string().into_bytes()),
        )
        .await
        .assert_status(401);
    let patch = json!({"tenant": {"issuer": "evil"}});
    let path = format!("/api/tenant/{}", server.default_tenant());
    server
        .request(
            "PATCH",
            &path,
            Some("start-only-key-1234567890"),
            &[],
            Some(patch.to_string().into_bytes()),
        )
        .await
        .assert_status(401);
}

#[tokio::test]
async fn s21_a_key_permitted_one_method_may_not_use_another() {
    let server = TestServer::start().await;
    key(
        &server,
        "get-users-only-1234567890",
        &[("/api/user", &["GET"])],
        None,
    )
    .await;
    let app = server.application(json!({})).await;
    let user = server.user(&app, "a@example.com", json!({})).await;
    server
        .get(
            &format!("/api/user/{user}"),
            Some("get-users-only-1234567890"),
        )
        .await
        .assert_status(200);
    let body = json!({"registration": {"applicationId": app}});
    server
        .request(
            "POST",
            "/api/user/registration",
            Some("get-users-only-1234567890"),
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await
        .assert_status(401);
}

#[tokio::test]
async fn s22_a_tenant_locked_key_cannot_reach_another_tenant() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let user = server.user(&app, "a@example.com", json!({})).await;
    let hooli = other_tenant(&server).await;
    key(&server, "hooli-key-12345678901234", &[], Some(&hooli)).await;

    let body = json!({"applicationId": app, "loginId": "a@example.com"});
    server
        .post(
            "/api/passwordless/start",
            Some("hooli-key-12345678901234"),
            body.clone(),
        )
        .await
        .assert_error_code("[invalid]applicationId");
    server
        .get(
            &format!("/api/user/{user}"),
            Some("hooli-key-12345678901234"),
        )
        .await
        .assert_status(404);
    let default_tenant = server.default_tenant();
    let response = server
        .request(
            "POST",
            "/api/passwordless/start",
            Some("hooli-key-12345678901234"),
            &[("X-FusionAuth-TenantId", &default_tenant)],
            Some(body.to_string().into_bytes()),
        )
        .await;
    response.assert_status(401);
    // The same key works inside its own tenant.
    let hooli_app = server.application(json!({"tenantId": hooli})).await;
    let register = json!({"user": {"email": "gavin@hooli.example"}, "registration": {"applicationId": hooli_app}});
    server
        .request(
            "POST",
            "/api/user/registration",
            Some("hooli-key-12345678901234"),
            &[],
            Some(register.to_string().into_bytes()),
        )
        .await
        .assert_status(200);
    let start = json!({"applicationId": hooli_app, "loginId": "gavin@hooli.example"});
    server
        .post(
            "/api/passwordless/start",
            Some("hooli-key-12345678901234"),
            start,
        )
        .await
        .assert_status(200);
    // A locked key cannot create tenants.
    server
        .request(
            "POST",
            "/api/tenant",
            Some("hooli-key-12345678901234"),
            &[],
            Some(json!({"tenant": {"name": "X"}}).to_string().into_bytes()),
        )
        .await
        .assert_status(401);
}

#[tokio::test]
async fn s22_a_tenant_locked_key_sees_and_changes_only_its_own_tenant() {
    let server = TestServer::start().await;
    let hooli = other_tenant(&server).await;
    let default_tenant = server.default_tenant();
    let locked = "hooli-key-12345678901234";
    key(&server, locked, &[], Some(&hooli)).await;

    let listed = server.get("/api/tenant", Some(locked)).await;
    listed.assert_status(200);
    let ids: Vec<String> = listed.json()["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, std::slice::from_ref(&hooli));
    server
        .get(&format!("/api/tenant/{hooli}"), Some(locked))
        .await
        .assert_status(200);
    let before = server.store_fingerprint().await;
    server
        .get(&format!("/api/tenant/{default_tenant}"), Some(locked))
        .await
        .assert_status(404);
    for (method, status) in [("PUT", 404), ("PATCH", 404), ("DELETE", 401)] {
        let response = server
            .request(
                method,
                &format!("/api/tenant/{default_tenant}"),
                Some(locked),
                &[],
                Some(
                    json!({"tenant": {"name": "Taken over"}})
                        .to_string()
                        .into_bytes(),
                ),
            )
            .await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{method}: {}",
            response.text
        );
    }
    // Not even its own tenant: a locked key cannot remove what bounds it.
    server
        .request(
            "DELETE",
            &format!("/api/tenant/{hooli}"),
            Some(locked),
            &[],
            None,
        )
        .await
        .assert_status(401);
    assert_eq!(before, server.store_fingerprint().await, "nothing changed");
}

#[tokio::test]
async fn a_tenant_is_replaced_whole_by_put_and_keeps_its_identity() {
    let server = TestServer::start().await;
    let hooli = other_tenant(&server).await;
    let before = server.get_tenant(&hooli).await;
    let put = server
        .admin(
            "PUT",
            &format!("/api/tenant/{hooli}"),
            json!({"tenant": {"name": "Hooli XYZ", "id": "3c219e58-ed0e-4b18-ad48-f4f92793ae32", "insertInstant": 1}}),
        )
        .await;
    put.assert_status(200);
    let after = put.json()["tenant"].clone();
    assert_eq!(after["name"], "Hooli XYZ");
    for kept in ["id", "insertInstant", "issuer"] {
        assert_eq!(after[kept], before[kept], "{kept}");
    }
    assert_eq!(
        after["jwtConfiguration"]["accessTokenKeyId"],
        before["jwtConfiguration"]["accessTokenKeyId"],
        "a PUT that names no key keeps the tenant's"
    );
    assert_eq!(server.get_tenant(&hooli).await, after);
    server
        .admin(
            "PUT",
            &format!("/api/tenant/{hooli}"),
            json!({"tenant": {}}),
        )
        .await
        .assert_error_code("[blank]tenant.name");
}

#[tokio::test]
async fn deleting_a_tenant_removes_it_with_everything_in_it_and_nothing_else() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let user = server
        .user(&app, "richard@piedpiper.example", json!({}))
        .await;
    let hooli = other_tenant(&server).await;
    let hooli_app = server.application(json!({"tenantId": hooli})).await;
    let gavin = server
        .user(&hooli_app, "gavin@hooli.example", json!({}))
        .await;
    key(&server, "hooli-key-12345678901234", &[], Some(&hooli)).await;
    let code = server.code(&hooli_app, "gavin@hooli.example").await;

    server
        .request(
            "DELETE",
            &format!("/api/tenant/{hooli}"),
            Some(ADMIN_KEY),
            &[],
            None,
        )
        .await
        .assert_status(200);
    server
        .get(&format!("/api/tenant/{hooli}"), Some(ADMIN_KEY))
        .await
        .assert_status(404);
    server
        .get(&format!("/api/user/{gavin}"), Some(ADMIN_KEY))
        .await
        .assert_status(404);
    server.login(json!({"code": code})).await.assert_status(404);
    server
        .post(
            "/api/passwordless/start",
            Some(ADMIN_KEY),
            json!({"applicationId": hooli_app, "loginId": "gavin@hooli.example"}),
        )
        .await
        .assert_error_code("[invalid]applicationId");
    server
        .get("/api/tenant", Some("hooli-key-12345678901234"))
        .await
        .assert_status(401);
    server
        .get(&format!("/{hooli}/.well-known/jwks.json"), None)
        .await
        .assert_status(404);
    // The other tenant is untouched: its user still signs in.
    server
        .get(&format!("/api/user/{user}"), Some(ADMIN_KEY))
        .await
        .assert_status(200);
    let code = server.code(&app, "richard@piedpiper.example").await;
    server.login(json!({"code": code})).await.assert_status(200);
    // The default tenant stays; an unknown one is a 404.
    let default_tenant = server.default_tenant();
    server
        .request(
            "DELETE",
            &format!("/api/tenant/{default_tenant}"),
            Some(ADMIN_KEY),
            &[],
            None,
        )
        .await
        .assert_error_code("[invalid]tenantId");
    server
        .request(
            "DELETE",
            &format!("/api/tenant/{hooli}"),
            Some(ADMIN_KEY),
            &[],
            None,
        )
        .await
        .assert_status(404);
}

#[tokio::test]
async fn s22_the_same_email_may_exist_once_per_tenant() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let hooli = other_tenant(&server).await;
    let hooli_app = server.application(json!({"tenantId": hooli})).await;
    let first = server.user(&app, "same@example.com", json!({})).await;
    let second = server.user(&hooli_app, "same@example.com", json!({})).await;
    assert_ne!(first, second);
    // With two tenants, an application must say which one it belongs to.
    server
        .admin(
            "POST",
            "/api/application",
            json!({"application": {"name": "Where"}}),
        )
        .await
        .assert_error_code("[missing]tenantId");
    let dup = json!({"user": {"email": "SAME@example.com"}, "registration": {"applicationId": hooli_app}});
    server
        .admin("POST", "/api/user/registration", dup)
        .await
        .assert_error_code("[duplicate]user.email");

    // With two tenants, a search must say which one.
    server
        .get("/api/user?email=same%40example.com", Some(ADMIN_KEY))
        .await
        .assert_error_code("[missing]tenantId");
    let found = server
        .request(
            "GET",
            "/api/user?email=same%40example.com",
            Some(ADMIN_KEY),
            &[("X-FusionAuth-TenantId", &hooli)],
            None,
        )
        .await;
    assert_eq!(found.json()["user"]["id"], second.as_str());
    // A start in one tenant finds only that tenant's user.
    let code = server.code(&hooli_app, "same@example.com").await;
    assert_eq!(
        server.login(json!({"code": code})).await.json()["user"]["id"],
        second.as_str()
    );
}

#[tokio::test]
async fn a_body_tenant_that_contradicts_the_header_is_refused() {
    let server = TestServer::start().await;
    let hooli = other_tenant(&server).await;
    let body = json!({"application": {"name": "A", "tenantId": server.default_tenant()}});
    let response = server
        .request(
            "POST",
            "/api/application",
            Some(ADMIN_KEY),
            &[("X-FusionAuth-TenantId", &hooli)],
            Some(body.to_string().into_bytes()),
        )
        .await;
    response.assert_error_code("[invalid]application.tenantId");
}

#[tokio::test]
async fn users_are_retrieved_by_id_and_by_email_case_insensitively() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let user = server
        .user(
            &app,
            "Dinesh@PiedPiper.example",
            json!({"data": {"team": "backend"}, "timezone": "America/Los_Angeles"}),
        )
        .await;
    let by_id = server
        .get(&format!("/api/user/{user}"), Some(ADMIN_KEY))
        .await
        .json();
    // Stored lowercased, as FusionAuth stores emails.
    assert_eq!(by_id["user"]["email"], "dinesh@piedpiper.example");
    assert_eq!(by_id["user"]["data"]["team"], "backend");
    assert_eq!(
        by_id["user"]["registrations"][0]["applicationId"],
        app.as_str()
    );
    let by_email = server
        .get(
            "/api/user?email=dinesh%40piedpiper.example",
            Some(ADMIN_KEY),
        )
        .await
        .json();
    assert_eq!(by_email["user"]["id"], user.as_str());
}

#[tokio::test]
async fn registering_an_existing_user_adds_a_registration_with_default_roles() {
    let server = TestServer::start().await;
    let first = server.application(json!({})).await;
    let second = server
        .application(json!({"roles": [{"name": "viewer", "isDefault": true}, {"name": "editor"}]}))
        .await;
    let user = server.user(&first, "a@example.com", json!({})).await;
    let response = server
        .admin(
            "POST",
            &format!("/api/user/registration/{user}"),
            json!({"registration": {"applicationId": second}}),
        )
        .await;
    response.assert_status(200);
    assert_eq!(response.json()["registration"]["roles"], json!(["viewer"]));
    let code = server.code(&second, "a@example.com").await;
    let token = server.login(json!({"code": code})).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        verified_claims(&server, &token, &second).await["roles"],
        json!(["viewer"])
    );
}

#[tokio::test]
async fn a_tenant_may_sign_with_es256_and_publishes_its_key() {
    let server = TestServer::start().await;
    let tenant = server
        .admin(
            "POST",
            "/api/tenant",
            json!({"tenant": {"name": "EC", "jwtConfiguration": {"signingAlgorithm": "ES256"}}}),
        )
        .await
        .json();
    let tenant_id = tenant["tenant"]["id"].as_str().unwrap().to_owned();
    let kid = tenant["tenant"]["jwtConfiguration"]["accessTokenKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = server.application(json!({"tenantId": tenant_id})).await;
    server.user(&app, "a@example.com", json!({})).await;
    let code = server.code(&app, "a@example.com").await;
    let token = server.login(json!({"code": code})).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(
        (header.alg, header.kid.as_deref()),
        (jsonwebtoken::Algorithm::ES256, Some(kid.as_str()))
    );
    let jwks = server.get("/.well-known/jwks.json", None).await.json();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (
            jwk["kty"].as_str(),
            jwk["crv"].as_str(),
            jwk["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&app]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
}

#[tokio::test]
async fn s24_hmac_keys_are_never_published_and_no_private_key_appears_in_responses() {
    let server = TestServer::start().await;
    let tenant = server
        .admin(
            "POST",
            "/api/tenant",
            json!({"tenant": {"name": "H", "jwtConfiguration": {"signingAlgorithm": "HS256"}}}),
        )
        .await;
    let kid = tenant.json()["tenant"]["jwtConfiguration"]["accessTokenKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwks = server.get("/.well-known/jwks.json", None).await;
    assert!(!jwks.text.contains(&kid));
    assert!(
        !jwks.text.contains("\"d\"")
            && !jwks.text.contains("privateDer")
            && !tenant.text.contains("privateDer")
    );
    assert_eq!(
        jwks.json()["keys"].as_array().unwrap().len(),
        1,
        "only the default tenant's RSA key"
    );
}

#[tokio::test]
async fn a_tenant_keeps_fusionauth_properties_and_refuses_unknown_or_unsafe_ones() {
    let server = TestServer::start().await;
    let hooli = other_tenant(&server).await;
    let path = format!("/api/tenant/{hooli}");
    let kept = json!({"tenant": {
        "themeId": "3c219e58-ed0e-4b18-ad48-f4f92793ae32",
        "data": {"region": "eu"},
        "emailConfiguration": {"host": "smtp.example", "port": 587, "verifyEmailWhenChanged": true},
        "externalIdentifierConfiguration": {"changePasswordIdTimeToLiveInSeconds": 600},
        "jwtConfiguration": {"enabled": true},
        "rateLimitConfiguration": {"failedLogin": {"enabled": true, "limit": 5, "timePeriodInSeconds": 60}},
        "failedAuthenticationConfiguration": {"tooManyAttempts": 5}
    }});
    server
        .admin("PATCH", &path, kept.clone())
        .await
        .assert_status(200);
    let shown = json!({"tenant": server.get_tenant(&hooli).await});
    let mut expected = shown.clone();
    merge(&mut expected, kept);
    assert_eq!(shown, expected, "every property sent is returned");

    let app = server.application(json!({"tenantId": hooli})).await;
    let before = server.store_fingerprint().await;
    for (body, code) in [
        (
            json!({"tenant": {"colour": "blue"}}),
            "[invalidJSON]tenant.colour",
        ),
        (
            json!({"tenant": {"emailConfiguration": {"colour": "blue"}}}),
            "[invalidJSON]tenant.emailConfiguration.colour",
        ),
        (
            json!({"tenant": {"rateLimitConfiguration": {"sendPasswordless": {"burst": 3}}}}),
            "[invalidJSON]tenant.rateLimitConfiguration.sendPasswordless.burst",
        ),
        (
            json!({"tenant": {"emailConfiguration": {"unverified": {"behavior": "Gated"}, "implicitEmailVerificationAllowed": false}}}),
            "[notSupported]tenant.emailConfiguration.unverified.behavior",
        ),
        (
            json!({"tenant": {"multiFactorConfiguration": {"sms": {"enabled": true}}}}),
            "[notSupported]tenant.multiFactorConfiguration.sms.enabled",
        ),
        (
            json!({"tenant": {"multiFactorConfiguration": {"email": {"enabled": true}}}}),
            "[missing]tenant.multiFactorConfiguration.email.templateId",
        ),
        (
            json!({"tenant": {"multiFactorConfiguration": {"loginPolicy": "Sometimes"}}}),
            "[invalidJSON]tenant.multiFactorConfiguration.loginPolicy",
        ),
    ] {
        server
            .admin("PATCH", &path, body)
            .await
            .assert_error_code(code);
    }
    let two_factor = json!({
        "user": {"email": "gavin@hooli.example", "twoFactor": {"methods": [{"method": "authenticator"}]}},
        "registration": {"applicationId": app},
    });
    server
        .admin("POST", "/api/user/registration", two_factor)
        .await
        .assert_error_code("[notSupported]user.twoFactor.methods");
    assert_eq!(before, server.store_fingerprint().await, "nothing changed");
}

#[tokio::test]
async fn s2_s21_api_keys_are_made_shown_once_and_managed_only_by_a_key_without_limits() {
    let server = TestServer::start().await;
    let hooli = other_tenant(&server).await;
    key(&server, "hooli-key-12345678901234", &[], Some(&hooli)).await;
    key(
        &server,
        "user-reader-key-1234567890",
        &[("/api/user", &["GET"])],
        None,
    )
    .await;

    let made = server
        .post(
            "/api/api-key",
            Some(ADMIN_KEY),
            json!({"apiKey": {"tenantId": hooli, "expirationInstant": T0.as_millis() + 60_000}}),
        )
        .await;
    made.assert_status(200);
    let made = made.json()["apiKey"].clone();
    let secret = made["key"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32);
    assert!(
        !server.store_fingerprint().await.contains(&secret),
        "the store keeps only the key's hash (S2)"
    );
    let id = made["id"].as_str().unwrap();
    let shown = server
        .get(&format!("/api/api-key/{id}"), Some(ADMIN_KEY))
        .await;
    assert!(shown.json()["apiKey"].get("key").is_none(), "shown once");
    assert_eq!(shown.json()["apiKey"]["tenantId"], hooli.as_str());

    // Keys with limits of any kind manage no keys, and no permission can name these routes.
    for limited in [
        "hooli-key-12345678901234",
        "user-reader-key-1234567890",
        secret.as_str(),
    ] {
        server
            .get(&format!("/api/api-key/{id}"), Some(limited))
            .await
            .assert_status(401);
        server
            .post("/api/api-key", Some(limited), json!({"apiKey": {}}))
            .await
            .assert_status(401);
    }
    server
        .post(
            "/api/api-key",
            Some(ADMIN_KEY),
            json!({"apiKey": {"permissions": {"endpoints": {"/api/api-key": ["POST"]}}}}),
        )
        .await
        .assert_error_code("[invalid]apiKey.permissions.endpoints[/api/api-key]");
    for (property, value) in [
        ("keyManager", json!(true)),
        ("retrievable", json!(true)),
        (
            "ipAccessControlListId",
            json!("3c219e58-ed0e-4b18-ad48-f4f92793ae32"),
        ),
    ] {
        server
            .post(
                "/api/api-key",
                Some(ADMIN_KEY),
                json!({"apiKey": {property: value}}),
            )
            .await
            .assert_error_code(&format!("[notSupported]apiKey.{property}"));
    }

    // The new key works in its tenant until it expires.
    server
        .get(&format!("/api/tenant/{hooli}"), Some(&secret))
        .await
        .assert_status(200);
    server.clock.advance_secs(61);
    server
        .get(&format!("/api/tenant/{hooli}"), Some(&secret))
        .await
        .assert_status(401);

    server
        .request(
            "DELETE",
            &format!("/api/api-key/{id}"),
            Some(ADMIN_KEY),
            &[],
            None,
        )
        .await
        .assert_status(200);
    server
        .get(&format!("/api/api-key/{id}"), Some(ADMIN_KEY))
        .await
        .assert_status(404);
}

#[tokio::test]
async fn s22_s29_email_templates_are_seen_and_changed_only_within_the_tenant() {
    let server = TestServer::start().await;
    let hooli = other_tenant(&server).await;
    let locked = "hooli-key-12345678901234";
    key(&server, locked, &[], Some(&hooli)).await;
    let template = |name: &str| json!({"emailTemplate": {"name": name, "defaultSubject": "Sign in", "defaultTextTemplate": "{{ url }}"}});
    let global = server
        .post("/api/email/template", Some(ADMIN_KEY), template("Global"))
        .await;
    let global = global.json()["emailTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let default_tenant = server.default_tenant();
    let pied_piper = server
        .request(
            "POST",
            "/api/email/template",
            Some(ADMIN_KEY),
            &[("X-FusionAuth-TenantId", &default_tenant)],
            Some(template("Pied Piper").to_string().into_bytes()),
        )
        .await;
    let pied_piper = pied_piper.json()["emailTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = server
        .post("/api/email/template", Some(locked), template("Hooli"))
        .await;
    own.assert_status(200);
    let own = own.json()["emailTemplate"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let listed: Vec<String> = server.get("/api/email/template", Some(locked)).await.json()
        ["emailTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(listed.contains(&global) && listed.contains(&own));
    assert!(
        !listed.contains(&pied_piper),
        "another tenant's template is not listed"
    );

    let before = server.store_fingerprint().await;
    for (method, path, status) in [
        ("GET", format!("/api/email/template/{pied_piper}"), 404),
        ("PUT", format!("/api/email/template/{pied_piper}"), 404),
        ("DELETE", format!("/api/email/template/{pied_piper}"), 404),
        ("PUT", format!("/api/email/template/{global}"), 401),
        ("DELETE", format!("/api/email/template/{global}"), 401),
    ] {
        let response = server
            .request(
                method,
                &path,
                Some(locked),
                &[],
                Some(template("Taken").to_string().into_bytes()),
            )
            .await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{method} {path}: {}",
            response.text
        );
    }
    assert_eq!(before, server.store_fingerprint().await, "nothing changed");
    let patched = server
        .admin(
            "PATCH",
            &format!("/api/email/template/{own}"),
            json!({"emailTemplate": {"defaultSubject": "{{ broken"}}),
        )
        .await;
    patched.assert_error_code("[invalid]emailTemplate.defaultSubject");
    server
        .request(
            "DELETE",
            &format!("/api/email/template/{own}"),
            Some(locked),
            &[],
            None,
        )
        .await
        .assert_status(200);
}

#[tokio::test]
async fn s22_s24_signing_keys_are_made_seen_and_deleted_within_the_tenant_and_never_shown_private()
{
    let server = TestServer::start().await;
    let hooli = other_tenant(&server).await;
    let locked = "hooli-key-12345678901234";
    key(&server, locked, &[], Some(&hooli)).await;
    let global = server
        .post(
            "/api/key/generate",
            Some(ADMIN_KEY),
            json!({"key": {"algorithm": "ES256"}}),
        )
        .await;
    let global = global.json()["key"]["id"].as_str().unwrap().to_owned();
    let own = server
        .post(
            "/api/key/generate",
            Some(locked),
            json!({"key": {"algorithm": "HS256", "name": "Hooli"}}),
        )
        .await;
    own.assert_status(200);
    let own_key = own.json()["key"].clone();
    let own = own_key["id"].as_str().unwrap().to_owned();
    for private in ["privateKey", "secret", "sealedPrivateKey"] {
        assert!(own_key.get(private).is_none(), "{private} shown");
    }
    let default_key = server.get_tenant(&server.default_tenant()).await["jwtConfiguration"]
        ["accessTokenKeyId"]
        .as_str()
        .unwrap()
        .to_owned();

    let listed: Vec<String> = server.get("/api/key", Some(locked)).await.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(listed.contains(&own) && listed.contains(&global));
    assert!(
        !listed.contains(&default_key),
        "another tenant's key is not listed"
    );
    let before = server.store_fingerprint().await;
    for (method, id, status) in [
        ("GET", &default_key, 404),
        ("DELETE", &default_key, 404),
        ("DELETE", &global, 401),
    ] {
        let response = server
            .request(method, &format!("/api/key/{id}"), Some(locked), &[], None)
            .await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{method} {id}: {}",
            response.text
        );
    }
    server
        .request(
            "DELETE",
            &format!("/api/key/{default_key}"),
            Some(ADMIN_KEY),
            &[],
            None,
        )
        .await
        .assert_error_code("[inUse]keyId");
    assert_eq!(before, server.store_fingerprint().await, "nothing changed");
    server
        .request(
            "DELETE",
            &format!("/api/key/{own}"),
            Some(locked),
            &[],
            None,
        )
        .await
        .assert_status(200);
}
