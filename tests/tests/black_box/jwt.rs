//! FusionAuth's `/api/jwt` helpers: validating access tokens and publishing public keys.

use crate::support::*;
use serde_json::json;

async fn validate(server: &TestServer, token: &str) -> Response {
    let authorization = format!("Bearer {token}");
    server
        .request(
            "GET",
            "/api/jwt/validate",
            None,
            &[("Authorization", &authorization)],
            None,
        )
        .await
}

#[tokio::test]
async fn a_live_token_validates_and_an_expired_forged_or_foreign_one_does_not() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"jwtConfiguration": {"enabled": true, "timeToLiveInSeconds": 60}}))
        .await;
    let user = server
        .user(&app, "richard@piedpiper.example", json!({}))
        .await;
    let code = server.code(&app, "richard@piedpiper.example").await;
    let token = server.login(json!({"code": code})).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let valid = validate(&server, &token).await;
    valid.assert_status(200);
    assert_eq!(valid.json()["jwt"]["sub"], user.as_str());
    let mut forged = token.clone();
    forged.truncate(token.len() - 4);
    forged.push_str("AAAA");
    validate(&server, &forged).await.assert_status(401);
    server
        .get("/api/jwt/validate", None)
        .await
        .assert_status(401);

    // A token signed by another tenant's key for that tenant is that tenant's, not a forgery
    // of this one: it validates as itself, with its own issuer.
    let hooli = server.tenant("Hooli").await;
    let hooli_app = server
        .application(json!({"tenantId": hooli, "jwtConfiguration": {"enabled": true}}))
        .await;
    server
        .user(&hooli_app, "gavin@hooli.example", json!({}))
        .await;
    let code = server.code(&hooli_app, "gavin@hooli.example").await;
    let foreign = server.login(json!({"code": code})).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = validate(&server, &foreign).await;
    assert_eq!(shown.json()["jwt"]["tid"], hooli.as_str());

    server.clock.advance_secs(61);
    validate(&server, &token).await.assert_status(401);
}

#[tokio::test]
async fn public_keys_are_published_as_pem_by_kid_by_application_and_all_but_never_an_hmac_secret() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let tenant = server.get_tenant(&server.default_tenant()).await;
    let kid = tenant["jwtConfiguration"]["accessTokenKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let hmac = server
        .post(
            "/api/key/generate",
            Some(ADMIN_KEY),
            json!({"key": {"algorithm": "HS256"}}),
        )
        .await
        .json()["key"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let by_kid = server
        .get(&format!("/api/jwt/public-key?kid={kid}"), None)
        .await;
    by_kid.assert_status(200);
    let pem = by_kid.json()["publicKey"].as_str().unwrap().to_owned();
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----\n")
            && pem.ends_with("-----END PUBLIC KEY-----")
    );
    let by_app = server
        .get(&format!("/api/jwt/public-key?applicationId={app}"), None)
        .await;
    assert_eq!(by_app.json()["publicKey"], pem.as_str());
    let all = server.get("/api/jwt/public-key", None).await.json()["publicKeys"].clone();
    assert_eq!(all[&kid], pem.as_str());
    assert!(all.get(&hmac).is_none());
    server
        .get(&format!("/api/jwt/public-key?kid={hmac}"), None)
        .await
        .assert_status(404);
}

#[tokio::test]
async fn s20_a_refresh_token_rotates_once_and_its_reuse_ends_the_family() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    let user = server
        .user(&app, "richard@piedpiper.example", json!({}))
        .await;
    let code = server.code(&app, "richard@piedpiper.example").await;
    let first = server.login(json!({"code": code})).await.json()["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let refreshed = server
        .post("/api/jwt/refresh", None, json!({"refreshToken": first}))
        .await;
    refreshed.assert_status(200);
    let second = refreshed.json()["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    let claims = verified_claims(&server, refreshed.json()["token"].as_str().unwrap(), &app).await;
    assert_eq!(claims["sub"], user.as_str());

    // From FusionAuth's cookie too.
    let cookie = format!("refresh_token={second}");
    let by_cookie = server
        .request(
            "POST",
            "/api/jwt/refresh",
            None,
            &[("Cookie", &cookie)],
            None,
        )
        .await;
    by_cookie.assert_status(200);
    let third = by_cookie.json()["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    server
        .post("/api/jwt/refresh", None, json!({"refreshToken": first}))
        .await
        .assert_status(404);
    server
        .post("/api/jwt/refresh", None, json!({"refreshToken": third}))
        .await
        .assert_status(404);
    server
        .post("/api/jwt/refresh", None, json!({}))
        .await
        .assert_error_code("[blank]refreshToken");
}

/// A new sign-in of `email`: its refresh token and that token's id.
async fn session(server: &TestServer, app: &str, email: &str) -> (String, String) {
    let code = server.code(app, email).await;
    let login = server.login(json!({"code": code})).await.json();
    (
        login["refreshToken"].as_str().unwrap().to_owned(),
        login["refreshTokenId"].as_str().unwrap().to_owned(),
    )
}

async fn refreshes(server: &TestServer, token: &str) -> bool {
    let response = server
        .post("/api/jwt/refresh", None, json!({"refreshToken": token}))
        .await;
    response.status == 200
}

#[tokio::test]
async fn refresh_tokens_are_listed_by_user_and_revoked_by_token_id_user_and_application() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    let email = "gilfoyle@piedpiper.example";
    let user = server.user(&app, email, json!({})).await;
    // The combined create gave the new user a session of its own: end it, to count sign-ins.
    server
        .call(
            "DELETE",
            &format!("/api/jwt/refresh?userId={user}"),
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(200);
    let (first, _) = session(&server, &app, email).await;
    let (second, second_id) = session(&server, &app, email).await;
    let rotated = server
        .post("/api/jwt/refresh", None, json!({"refreshToken": first}))
        .await
        .json();
    let (first, first_id) = (
        rotated["refreshToken"].as_str().unwrap().to_owned(),
        rotated["refreshTokenId"].as_str().unwrap().to_owned(),
    );

    // Listed: the live token of each sign-in, never the token itself.
    let listed = server
        .get(&format!("/api/jwt/refresh?userId={user}"), Some(ADMIN_KEY))
        .await;
    listed.assert_status(200);
    let tokens = listed.json()["refreshTokens"].as_array().unwrap().clone();
    let mut ids: Vec<&str> = tokens.iter().map(|t| t["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected = vec![first_id.as_str(), second_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    for token in &tokens {
        assert_eq!(token["userId"], user.as_str());
        assert_eq!(token["applicationId"], app.as_str());
        assert!(token.get("token").is_none(), "{token}");
    }
    let one = server
        .get(&format!("/api/jwt/refresh/{second_id}"), Some(ADMIN_KEY))
        .await;
    one.assert_status(200);
    assert_eq!(one.json()["refreshToken"]["id"], second_id.as_str());

    // By token, by id: that sign-in ends, the other lives on.
    server
        .call(
            "DELETE",
            &format!("/api/jwt/refresh?token={second}"),
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(200);
    assert!(!refreshes(&server, &second).await);
    server
        .call(
            "DELETE",
            &format!("/api/jwt/refresh/{first_id}"),
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(200);
    assert!(!refreshes(&server, &first).await);
    server
        .get(&format!("/api/jwt/refresh/{first_id}"), Some(ADMIN_KEY))
        .await
        .assert_status(404);

    // By user and application, by application, by user in a body.
    for revoke in [
        format!("/api/jwt/refresh?userId={user}&applicationId={app}"),
        format!("/api/jwt/refresh?applicationId={app}"),
        "/api/jwt/refresh".to_owned(),
    ] {
        let (token, _) = session(&server, &app, email).await;
        let body = (!revoke.contains('?')).then(|| json!({"userId": user}));
        server
            .call("DELETE", &revoke, ADMIN_KEY, body)
            .await
            .assert_status(200);
        assert!(!refreshes(&server, &token).await, "{revoke}");
    }
    let listed = server
        .get(&format!("/api/jwt/refresh?userId={user}"), Some(ADMIN_KEY))
        .await;
    assert_eq!(listed.json()["refreshTokens"], json!([]));
}

#[tokio::test]
async fn refresh_token_management_refuses_bad_requests_and_other_tenants() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    let email = "dinesh@piedpiper.example";
    let user = server.user(&app, email, json!({})).await;
    let (token, token_id) = session(&server, &app, email).await;

    server
        .get("/api/jwt/refresh", Some(ADMIN_KEY))
        .await
        .assert_error_code("[missing]userId");
    server
        .get("/api/jwt/refresh?userId=nope", Some(ADMIN_KEY))
        .await
        .assert_error_code("[invalid]userId");
    server
        .call("DELETE", "/api/jwt/refresh", ADMIN_KEY, None)
        .await
        .assert_error_code("[invalid]token");
    server
        .call(
            "DELETE",
            &format!("/api/jwt/refresh?token={token}&userId={user}"),
            ADMIN_KEY,
            None,
        )
        .await
        .assert_error_code("[invalid]token");
    let unknown = "7f3c2a10-1d2e-4b5f-8a9b-0c1d2e3f4a5b";
    for path in [
        format!("/api/jwt/refresh?userId={unknown}"),
        format!("/api/jwt/refresh/{unknown}"),
    ] {
        server.get(&path, Some(ADMIN_KEY)).await.assert_status(404);
    }
    server
        .call(
            "DELETE",
            "/api/jwt/refresh?token=never-issued",
            ADMIN_KEY,
            None,
        )
        .await
        .assert_status(404);

    // A key locked to another tenant neither sees nor ends this tenant's sessions (S22).
    let other = server.tenant("Hooli").await;
    let locked = "a-key-locked-to-hooli-0123456789abcdef";
    server
        .api_key(
            locked,
            &[("/api/jwt/refresh", &["GET", "DELETE"])],
            Some(&other),
        )
        .await;
    server
        .get(&format!("/api/jwt/refresh?userId={user}"), Some(locked))
        .await
        .assert_status(404);
    server
        .get(&format!("/api/jwt/refresh/{token_id}"), Some(locked))
        .await
        .assert_status(404);
    for revoke in [
        format!("/api/jwt/refresh?token={token}"),
        format!("/api/jwt/refresh/{token_id}"),
        format!("/api/jwt/refresh?userId={user}"),
        format!("/api/jwt/refresh?applicationId={app}"),
    ] {
        server
            .call("DELETE", &revoke, locked, None)
            .await
            .assert_status(404);
    }
    assert!(refreshes(&server, &token).await);
}

/// A key pair made outside the server, as an operator brings it: private and public PEM.
fn outside_key(algorithm: passwordless::domain::SigningAlgorithm) -> (String, String) {
    use passwordless::ports::KeyMaker;
    let made = passwordless::adapters::keys::AwsLcKeyMaker
        .generate(
            passwordless::domain::KeyId::from_random_bytes([5; 16]),
            algorithm,
            None,
        )
        .unwrap();
    let public = made.public_jwk.as_ref().unwrap().to_pem().unwrap();
    let private = passwordless::domain::signing::pem("PRIVATE KEY", &made.private.unwrap().0);
    (private, public)
}

async fn access_token(server: &TestServer, app: &str, email: &str) -> String {
    let code = server.code(app, email).await;
    server.login(json!({"code": code})).await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn an_imported_key_takes_over_signing_and_tokens_of_the_old_key_validate_until_they_expire() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let email = "laurie@raviga.example";
    server.user(&app, email, json!({})).await;
    let before = access_token(&server, &app, email).await;
    let old_kid = kid_of(&before);

    let (private, public) = outside_key(passwordless::domain::SigningAlgorithm::Es384);
    let imported = server
        .admin(
            "POST",
            "/api/key/import",
            json!({"key": {"name": "2027 signing key", "privateKey": private, "publicKey": public}}),
        )
        .await;
    imported.assert_status(200);
    let key = imported.json()["key"].clone();
    assert_eq!(
        (
            &key["algorithm"],
            &key["type"],
            &key["hasPrivateKey"],
            &key["name"]
        ),
        (
            &json!("ES384"),
            &json!("EC"),
            &json!(true),
            &json!("2027 signing key")
        )
    );
    assert_eq!(key["publicKey"].as_str().unwrap().trim(), public.trim());
    assert!(key.get("privateKey").is_none(), "{key}");
    let new_kid = key["id"].as_str().unwrap().to_owned();

    // Rotation: the tenant signs with the new key from now on.
    server
        .patch_default_tenant(
            json!({"tenant": {"jwtConfiguration": {"accessTokenKeyId": new_kid}}}),
        )
        .await;
    let after = access_token(&server, &app, email).await;
    let header = jsonwebtoken::decode_header(&after).unwrap();
    assert_eq!(
        (header.alg, header.kid.as_deref()),
        (jsonwebtoken::Algorithm::ES384, Some(new_kid.as_str()))
    );
    // Meanwhile both validate and the JWKS shows both keys.
    validate(&server, &before).await.assert_status(200);
    validate(&server, &after).await.assert_status(200);
    let jwks = server.get("/.well-known/jwks.json", None).await.json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );
    let new_jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == new_kid.as_str())
        .unwrap();
    assert_eq!(
        (&new_jwk["crv"], &new_jwk["alg"]),
        (&json!("P-384"), &json!("ES384"))
    );

    // Once the old key's last token has expired, only new tokens validate.
    server.clock.advance_secs(3601);
    validate(&server, &before).await.assert_status(401);
    let fresh = access_token(&server, &app, email).await;
    assert_eq!(kid_of(&fresh), new_kid);
    validate(&server, &fresh).await.assert_status(200);
}

#[tokio::test]
async fn imports_refuse_keys_that_cannot_sign_safely() {
    let server = TestServer::start().await;
    let (_, public) = outside_key(passwordless::domain::SigningAlgorithm::Rs256);
    let verification_only = server
        .admin(
            "POST",
            "/api/key/import",
            json!({"key": {"publicKey": public}}),
        )
        .await;
    verification_only.assert_status(200);
    let key = verification_only.json()["key"].clone();
    assert_eq!(
        (&key["hasPrivateKey"], &key["length"]),
        (&json!(false), &json!(2048))
    );
    let id = key["id"].as_str().unwrap();
    // It signs nothing, so no tenant may sign with it and no verifier is told to trust it.
    let tenant = server
        .admin(
            "POST",
            "/api/tenant",
            json!({"tenant": {"name": "Verify only", "jwtConfiguration": {"accessTokenKeyId": id}}}),
        )
        .await;
    tenant.assert_error_code("[invalid]tenant.jwtConfiguration.accessTokenKeyId");
    let jwks = server.get("/.well-known/jwks.json", None).await.json();
    assert!(!jwks.to_string().contains(id));
    server
        .get(&format!("/api/jwt/public-key?kid={id}"), None)
        .await
        .assert_status(404);

    for (body, code) in [
        (
            json!({"algorithm": "HS256", "secret": "thirty-one-bytes-is-one-too-few"}),
            "[invalid]key.secret",
        ),
        (json!({"secret": "a".repeat(64)}), "[missing]key.algorithm"),
        (
            json!({"algorithm": "HS384", "secret": "a".repeat(64)}),
            "[notSupported]key.algorithm",
        ),
        (
            json!({"privateKey": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}),
            "[invalid]key.privateKey",
        ),
        (json!({}), "[invalid]key.publicKey"),
        (
            json!({"certificate": "-----BEGIN CERTIFICATE-----"}),
            "[notSupported]key.certificate",
        ),
    ] {
        server
            .admin("POST", "/api/key/import", json!({"key": body}))
            .await
            .assert_error_code(code);
    }
    let hmac = server
        .admin(
            "POST",
            "/api/key/import/0d6b7f51-3c2a-4e8f-9b1d-5a7c9e2f4b60",
            json!({"key": {"algorithm": "HS512", "secret": "s".repeat(64)}}),
        )
        .await;
    hmac.assert_status(200);
    assert_eq!(
        (&hmac.json()["key"]["id"], &hmac.json()["key"]["length"]),
        (&json!("0d6b7f51-3c2a-4e8f-9b1d-5a7c9e2f4b60"), &json!(512))
    );
    assert!(!hmac.text.contains(&"s".repeat(64)));
}

#[tokio::test]
async fn a_login_sets_fusionauths_token_cookies_for_browser_callers() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    server.user(&app, "jian@yang.example", json!({})).await;
    let code = server.code(&app, "jian@yang.example").await;
    let login = server.login(json!({"code": code})).await;
    login.assert_status(200);
    let body = login.json();
    let cookies: Vec<String> = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let access = format!(
        "access_token={}; Max-Age=3600; Path=/; SameSite=Strict; HttpOnly; Secure",
        body["token"].as_str().unwrap()
    );
    let refresh = format!(
        "refresh_token={}; Max-Age=2592000; Path=/; SameSite=Strict; HttpOnly; Secure",
        body["refreshToken"].as_str().unwrap()
    );
    assert_eq!(cookies, vec![access, refresh]);
    // noJWT: no tokens, no cookies.
    let code = server.code(&app, "jian@yang.example").await;
    let quiet = server.login(json!({"code": code, "noJWT": true})).await;
    assert!(quiet.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn the_combined_user_and_registration_create_answers_with_tokens_for_the_new_user_only() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    let created = server
        .admin(
            "POST",
            "/api/user/registration",
            json!({"user": {"email": "big.head@hooli.example"}, "registration": {"applicationId": app, "roles": ["user"]}}),
        )
        .await;
    created.assert_status(200);
    let body = created.json();
    let token = body["token"].as_str().unwrap();
    assert!(body["tokenExpirationInstant"].is_i64(), "{body}");
    let claims = validate(&server, token).await.json()["jwt"].clone();
    assert_eq!(
        (
            &claims["sub"],
            &claims["authenticationType"],
            &claims["roles"]
        ),
        (
            &body["user"]["id"],
            &json!("REGISTRATION"),
            &json!(["user"])
        )
    );
    assert_eq!(claims["sid"], body["refreshTokenId"]);
    let refreshed = server
        .post(
            "/api/jwt/refresh",
            None,
            json!({"refreshToken": body["refreshToken"]}),
        )
        .await;
    refreshed.assert_status(200);

    // Registering a user who already exists answers no token: a key allowed to register must
    // not become a way to obtain a token for any account.
    let other = server.application(json!({"name": "Other"})).await;
    let user = body["user"]["id"].as_str().unwrap();
    let registered = server
        .admin(
            "POST",
            &format!("/api/user/registration/{user}"),
            json!({"registration": {"applicationId": other}}),
        )
        .await;
    registered.assert_status(200);
    assert!(registered.json().get("token").is_none());
}

/// FusionAuth's `POST /api/logout`: the refresh token from the body, the query or the cookie
/// ends its session (with `global`, every session of its user), the login cookies are cleared,
/// and a token that is already dead is still a 200.
#[tokio::test]
async fn logout_ends_the_session_or_every_session_and_clears_the_cookies() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    let email = "monica@piedpiper.example";
    server.user(&app, email, json!({})).await;
    let (first, _) = session(&server, &app, email).await;
    let (second, _) = session(&server, &app, email).await;

    let response = server
        .post("/api/logout", None, json!({"refreshToken": first}))
        .await;
    response.assert_status(200);
    let cleared: Vec<&str> = response
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    for name in ["access_token", "refresh_token"] {
        assert!(
            cleared
                .iter()
                .any(|c| c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0")),
            "{name} cleared: {cleared:?}"
        );
    }
    assert!(!refreshes(&server, &first).await, "the session is over");
    assert!(
        refreshes(&server, &second).await,
        "another session lives on"
    );
    // Logging out twice is logging out.
    server
        .post("/api/logout", None, json!({"refreshToken": first}))
        .await
        .assert_status(200);

    // `global`, here in the query with the token in FusionAuth's cookie: every session ends.
    let (third, _) = session(&server, &app, email).await;
    let (fourth, _) = session(&server, &app, email).await;
    server
        .request(
            "POST",
            "/api/logout?global=true",
            None,
            &[("Cookie", &format!("refresh_token={third}"))],
            None,
        )
        .await
        .assert_status(200);
    assert!(!refreshes(&server, &third).await);
    assert!(
        !refreshes(&server, &fourth).await,
        "global ends the user's other sessions"
    );
}

/// FusionAuth's refresh API sets the new tokens as the browser's `access_token` and
/// `refresh_token` cookies, and reads the refresh token from its cookie when the body has none.
#[tokio::test]
async fn a_refresh_from_the_cookie_replaces_the_token_cookies() {
    let server = TestServer::start().await;
    let app = server
        .application(json!({"loginConfiguration": {"generateRefreshTokens": true}}))
        .await;
    let email = "jared@piedpiper.example";
    server.user(&app, email, json!({})).await;
    let (token, _) = session(&server, &app, email).await;
    let response = server
        .request(
            "POST",
            "/api/jwt/refresh",
            None,
            &[("Cookie", &format!("refresh_token={token}"))],
            None,
        )
        .await;
    response.assert_status(200);
    let body = response.json();
    let cookies: Vec<&str> = response
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let set = |name: &str, value: &str| {
        cookies.iter().any(|c| {
            c.starts_with(&format!("{name}={value};"))
                && c.contains("HttpOnly")
                && c.contains("SameSite=Strict")
                && c.contains("Secure")
                && !c.contains("Max-Age=0;")
        })
    };
    assert!(
        set("access_token", body["token"].as_str().unwrap()),
        "{cookies:?}"
    );
    assert!(
        set("refresh_token", body["refreshToken"].as_str().unwrap()),
        "{cookies:?}"
    );
    assert_ne!(body["refreshToken"], token.as_str(), "the token rotated");
}
