//! Bad input gets the documented 4xx with a FusionAuth error body, never a 5xx, and changes
//! nothing (S11).

use crate::support::*;
use serde_json::json;

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    key: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// The error code a 400 must carry.
    code: Option<&'static str>,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: Option<&'static str>,
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        key: Some(ADMIN_KEY),
        body: body.into(),
        status,
        code,
    }
}

fn json_body(value: serde_json::Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

#[tokio::test]
async fn s11_every_endpoint_answers_bad_input_with_a_documented_4xx_and_changes_nothing() {
    let server = TestServer::start().await;
    let app = server.application(json!({})).await;
    let disabled = server
        .application(json!({"passwordlessConfiguration": {"enabled": false}}))
        .await;
    let user = server.user(&app, "a@example.com", json!({})).await;
    let unknown = "3c219e58-ed0e-4b18-ad48-f4f92793ae32";
    let tenant = format!("/api/tenant/{}", server.default_tenant());
    let megabyte = {
        let mut body = br#"{"pad":""#.to_vec();
        body.extend(std::iter::repeat_n(b'x', 1024 * 1024));
        body.extend(br#""}"#);
        body
    };
    let long_login_id = "x".repeat(321);
    let long_code = "c".repeat(257);
    let big_state: String = "s".repeat(9 * 1024);

    let mut cases = Vec::new();
    for path in [
        "/api/passwordless/start",
        "/api/passwordless/send",
        "/api/passwordless/login",
        "/api/tenant",
        "/api/application",
        "/api/user/registration",
        "/api/email/template",
    ] {
        cases.push(case(
            "malformed JSON",
            "POST",
            path,
            "{\"applicationId\": ",
            400,
            Some("[invalidJSON]"),
        ));
        cases.push(case(
            "a JSON array",
            "POST",
            path,
            "[1, 2]",
            400,
            Some("[invalidJSON]"),
        ));
        cases.push(case(
            "an empty body",
            "POST",
            path,
            "",
            400,
            Some("[invalidJSON]"),
        ));
        cases.push(case(
            "1 MiB body",
            "POST",
            path,
            megabyte.clone(),
            400,
            Some("[tooLarge]body"),
        ));
    }
    cases.push(case(
        "malformed JSON",
        "PATCH",
        &tenant,
        "{",
        400,
        Some("[invalidJSON]"),
    ));
    cases.push(case(
        "1 MiB body",
        "PATCH",
        &tenant,
        megabyte.clone(),
        400,
        Some("[tooLarge]body"),
    ));

    let start = "/api/passwordless/start";
    cases.extend([
        case("missing fields", "POST", start, json_body(json!({})), 400, Some("[missing]applicationId")),
        case("missing login id", "POST", start, json_body(json!({"applicationId": app})), 400, Some("[blank]loginId")),
        case("blank login id", "POST", start, json_body(json!({"applicationId": app, "loginId": "  "})), 400, Some("[blank]loginId")),
        case("login id of the wrong type", "POST", start, json_body(json!({"applicationId": app, "loginId": 42})), 400, Some("[invalidJSON]loginId")),
        case("login id too long", "POST", start, json_body(json!({"applicationId": app, "loginId": long_login_id})), 400, Some("[tooLong]loginId")),
        case("non-UUID application", "POST", start, json_body(json!({"applicationId": "nope", "loginId": "a@example.com"})), 400, Some("[invalidJSON]applicationId")),
        case("application of the wrong type", "POST", start, json_body(json!({"applicationId": 7, "loginId": "a@example.com"})), 400, Some("[invalidJSON]applicationId")),
        case("unknown application", "POST", start, json_body(json!({"applicationId": unknown, "loginId": "a@example.com"})), 400, Some("[invalid]applicationId")),
        case("passwordless disabled", "POST", start, json_body(json!({"applicationId": disabled, "loginId": "a@example.com"})), 400, Some("[disabled]applicationId")),
        case("bad login id type", "POST", start, json_body(json!({"applicationId": app, "loginId": "a@example.com", "loginIdTypes": ["phone"]})), 400, Some("[invalid]loginIdTypes")),
        case("login id types not a list", "POST", start, json_body(json!({"applicationId": app, "loginId": "a@example.com", "loginIdTypes": "email"})), 400, Some("[invalidJSON]loginIdTypes")),
        case("bad strategy", "POST", start, json_body(json!({"applicationId": app, "loginId": "a@example.com", "loginStrategy": "Carrier pigeon"})), 400, Some("[invalidJSON]loginStrategy")),
        case("state not an object", "POST", start, json_body(json!({"applicationId": app, "loginId": "a@example.com", "state": "s"})), 400, Some("[invalidJSON]state")),
        case("state too large", "POST", start, json_body(json!({"applicationId": app, "loginId": "a@example.com", "state": {"s": big_state}})), 400, Some("[tooLarge]state")),
        case("unknown user", "POST", start, json_body(json!({"applicationId": app, "loginId": "nobody@example.com"})), 404, None),
    ]);

    let send = "/api/passwordless/send";
    cases.extend([
        case(
            "missing code",
            "POST",
            send,
            json_body(json!({})),
            400,
            Some("[blank]code"),
        ),
        case(
            "an empty code names nothing: the same 200 as an unknown one",
            "POST",
            send,
            json_body(json!({"code": ""})),
            200,
            None,
        ),
        case(
            "code of the wrong type",
            "POST",
            send,
            json_body(json!({"code": ["x"]})),
            400,
            Some("[invalidJSON]code"),
        ),
        case(
            "code too long",
            "POST",
            send,
            json_body(json!({"code": long_code})),
            400,
            Some("[tooLong]code"),
        ),
        case(
            "unknown application (form B)",
            "POST",
            send,
            json_body(json!({"applicationId": unknown, "loginId": "a@example.com"})),
            400,
            Some("[invalid]applicationId"),
        ),
        case(
            "unknown code",
            "POST",
            send,
            json_body(json!({"code": "unknown"})),
            200,
            None,
        ),
    ]);

    let login = "/api/passwordless/login";
    cases.extend([
        case(
            "missing code",
            "POST",
            login,
            json_body(json!({})),
            400,
            Some("[blank]code"),
        ),
        case(
            "code of the wrong type",
            "POST",
            login,
            json_body(json!({"code": 12})),
            400,
            Some("[invalidJSON]code"),
        ),
        case(
            "code too long",
            "POST",
            login,
            json_body(json!({"code": long_code})),
            400,
            Some("[tooLong]code"),
        ),
        case(
            "noJWT of the wrong type",
            "POST",
            login,
            json_body(json!({"code": "x", "noJWT": "yes"})),
            400,
            Some("[invalidJSON]noJWT"),
        ),
        case(
            "non-UUID application",
            "POST",
            login,
            json_body(json!({"code": "x", "applicationId": "nope"})),
            400,
            Some("[invalidJSON]applicationId"),
        ),
        case(
            "unknown application",
            "POST",
            login,
            json_body(json!({"code": "x", "applicationId": unknown})),
            400,
            Some("[invalid]applicationId"),
        ),
        case(
            "metaData of the wrong type",
            "POST",
            login,
            json_body(json!({"code": "x", "metaData": 1})),
            400,
            Some("[invalidJSON]metaData"),
        ),
        case(
            "a property FusionAuth does not know",
            "POST",
            login,
            json_body(json!({"code": "x", "rememberMe": true})),
            400,
            Some("[invalidJSON]rememberMe"),
        ),
        case(
            "unknown code",
            "POST",
            login,
            json_body(json!({"code": "x"})),
            404,
            None,
        ),
    ]);

    cases.extend([
        case("tenant missing", "POST", "/api/tenant", json_body(json!({})), 400, Some("[missing]tenant")),
        case("tenant not an object", "POST", "/api/tenant", json_body(json!({"tenant": 3})), 400, Some("[invalidJSON]tenant")),
        case("tenant without name", "POST", "/api/tenant", json_body(json!({"tenant": {}})), 400, Some("[blank]tenant.name")),
        case("tenant ttl of the wrong type", "POST", "/api/tenant", json_body(json!({"tenant": {"name": "T", "externalIdentifierConfiguration": {"passwordlessLoginTimeToLiveInSeconds": "long"}}})), 400, Some("[invalidJSON]tenant.externalIdentifierConfiguration.passwordlessLoginTimeToLiveInSeconds")),
        case("tenant ttl zero", "POST", "/api/tenant", json_body(json!({"tenant": {"name": "T", "externalIdentifierConfiguration": {"passwordlessLoginTimeToLiveInSeconds": 0}}})), 400, Some("[invalid]tenant.externalIdentifierConfiguration.passwordlessLoginTimeToLiveInSeconds")),
        case("non-UUID tenant id", "POST", "/api/tenant/not-a-uuid", json_body(json!({"tenant": {"name": "T"}})), 400, Some("[invalid]tenantId")),
        case("existing tenant id", "POST", &tenant, json_body(json!({"tenant": {"name": "T"}})), 400, Some("[duplicate]tenantId")),
        case("patch of an unknown tenant", "PATCH", &format!("/api/tenant/{unknown}"), json_body(json!({"tenant": {"name": "T"}})), 404, None),
        case("patch of a non-UUID tenant", "PATCH", "/api/tenant/zzz", json_body(json!({"tenant": {"name": "T"}})), 400, Some("[invalid]tenantId")),
        case("patch with a wrong type", "PATCH", &tenant, json_body(json!({"tenant": {"issuer": 5}})), 400, Some("[invalidJSON]tenant.issuer")),
        case("patch with a bad generator type", "PATCH", &tenant, json_body(json!({"tenant": {"externalIdentifierConfiguration": {"passwordlessLoginOneTimeCodeGenerator": {"type": "randomEmoji", "length": 6}}}})), 400, Some("[invalidJSON]tenant.externalIdentifierConfiguration.passwordlessLoginOneTimeCodeGenerator.type")),
        case("application missing", "POST", "/api/application", json_body(json!({})), 400, Some("[missing]application")),
        case("a property FusionAuth's request does not have", "POST", "/api/application", json_body(json!({"app": {}})), 400, Some("[invalidJSON]app")),
        case("application without name", "POST", "/api/application", json_body(json!({"application": {"roles": []}})), 400, Some("[blank]application.name")),
        case("application roles of the wrong type", "POST", "/api/application", json_body(json!({"application": {"name": "A", "roles": "admin"}})), 400, Some("[invalidJSON]application.roles")),
        case("application in an unknown tenant", "POST", "/api/application", json_body(json!({"application": {"name": "A", "tenantId": unknown}})), 400, Some("[invalid]application.tenantId")),
        case("non-UUID application id", "POST", "/api/application/123", json_body(json!({"application": {"name": "A"}})), 400, Some("[invalid]applicationId")),
        case("existing application id", "POST", &format!("/api/application/{app}"), json_body(json!({"application": {"name": "A"}})), 400, Some("[duplicate]applicationId")),
        case("registration missing", "POST", "/api/user/registration", json_body(json!({"user": {"email": "n@example.com"}})), 400, Some("[missing]registration")),
        case("registration without application", "POST", "/api/user/registration", json_body(json!({"user": {"email": "n@example.com"}, "registration": {}})), 400, Some("[missing]registration.applicationId")),
        case("registration for an unknown application", "POST", "/api/user/registration", json_body(json!({"user": {"email": "n@example.com"}, "registration": {"applicationId": unknown}})), 400, Some("[invalid]registration.applicationId")),
        case("registration with an unknown role", "POST", "/api/user/registration", json_body(json!({"user": {"email": "n@example.com"}, "registration": {"applicationId": app, "roles": ["god"]}})), 400, Some("[invalid]registration.roles")),
        case("user without email or username", "POST", "/api/user/registration", json_body(json!({"user": {"firstName": "N"}, "registration": {"applicationId": app}})), 400, Some("[blank]user.email")),
        case("user with a bad email", "POST", "/api/user/registration", json_body(json!({"user": {"email": "not an email"}, "registration": {"applicationId": app}})), 400, Some("[invalid]user.email")),
        case("user with a field of the wrong type", "POST", "/api/user/registration", json_body(json!({"user": {"email": "n@example.com", "preferredLanguages": "de"}, "registration": {"applicationId": app}})), 400, Some("[invalidJSON]user.preferredLanguages")),
        case("duplicate email", "POST", "/api/user/registration", json_body(json!({"user": {"email": "A@example.com"}, "registration": {"applicationId": app}})), 400, Some("[duplicate]user.email")),
        case("registration of an unknown user", "POST", &format!("/api/user/registration/{unknown}"), json_body(json!({"registration": {"applicationId": app}})), 400, Some("[invalid]userId")),
        case("registration of a non-UUID user", "POST", "/api/user/registration/abc", json_body(json!({"registration": {"applicationId": app}})), 400, Some("[invalid]userId")),
        case("a second registration for one application", "POST", &format!("/api/user/registration/{user}"), json_body(json!({"registration": {"applicationId": app}})), 400, Some("[duplicate]registration.applicationId")),
        case("template missing", "POST", "/api/email/template", json_body(json!({})), 400, Some("[missing]emailTemplate")),
        case("template without subject", "POST", "/api/email/template", json_body(json!({"emailTemplate": {"name": "T", "defaultTextTemplate": "x"}})), 400, Some("[blank]emailTemplate.defaultSubject")),
        case("template that does not parse", "POST", "/api/email/template", json_body(json!({"emailTemplate": {"name": "T", "defaultSubject": "{{ x", "defaultTextTemplate": "x"}})), 400, Some("[invalid]emailTemplate.defaultSubject")),
        case("non-UUID template id", "POST", "/api/email/template/xyz", json_body(json!({"emailTemplate": {"name": "T", "defaultSubject": "s", "defaultTextTemplate": "x"}})), 400, Some("[invalid]emailTemplateId")),
    ]);
    cases.push(Case {
        name: "unknown user",
        method: "GET",
        path: format!("/api/user/{unknown}"),
        key: Some(ADMIN_KEY),
        body: Vec::new(),
        status: 404,
        code: None,
    });
    cases.push(Case {
        name: "non-UUID user",
        method: "GET",
        path: "/api/user/not-a-uuid".into(),
        key: Some(ADMIN_KEY),
        body: Vec::new(),
        status: 404,
        code: None,
    });
    cases.push(Case {
        name: "unknown email",
        method: "GET",
        path: "/api/user?email=nobody%40example.com".into(),
        key: Some(ADMIN_KEY),
        body: Vec::new(),
        status: 404,
        code: None,
    });
    cases.push(Case {
        name: "search without a criterion",
        method: "GET",
        path: "/api/user".into(),
        key: Some(ADMIN_KEY),
        body: Vec::new(),
        status: 400,
        code: Some("[missing]email"),
    });
    cases.push(Case {
        name: "unknown route",
        method: "GET",
        path: "/api/nothing-here".into(),
        key: Some(ADMIN_KEY),
        body: Vec::new(),
        status: 404,
        code: None,
    });
    cases.push(Case {
        name: "wrong method",
        method: "GET",
        path: "/api/passwordless/login".into(),
        key: None,
        body: Vec::new(),
        status: 405,
        code: None,
    });
    cases.push(Case {
        name: "bad tenant header",
        method: "POST",
        path: "/api/passwordless/login".into(),
        key: None,
        body: json_body(json!({"code": "x"})),
        status: 400,
        code: Some("[invalid]tenantId"),
    });

    assert!(cases.len() > 80, "the table covers every endpoint");
    let before = server.store_fingerprint().await;
    for case in &cases {
        let headers: &[(&str, &str)] = if case.name == "bad tenant header" {
            &[("X-FusionAuth-TenantId", "nope")]
        } else {
            &[]
        };
        let body = (case.method != "GET").then(|| case.body.clone());
        let response = server
            .request(case.method, &case.path, case.key, headers, body)
            .await;
        assert_eq!(
            response.status.as_u16(),
            case.status,
            "{} {} ({}): {}",
            case.method,
            case.path,
            case.name,
            response.text
        );
        match case.code {
            Some(code) => response.assert_error_code(code),
            None if case.status != 200 => assert!(
                response.text.is_empty(),
                "{}: {} has a body: {}",
                case.path,
                case.name,
                response.text
            ),
            None => {}
        }
        assert_eq!(
            before,
            server.store_fingerprint().await,
            "{} {} ({}) changed the store",
            case.method,
            case.path,
            case.name
        );
    }
}

/// One rule for a path segment that is not the id its route expects: a write (POST, PUT,
/// PATCH) is a bad request naming the parameter; a read or a delete asks for what the id names,
/// which nothing can be: 404.
#[tokio::test]
async fn a_malformed_id_in_the_path_is_400_on_a_write_and_404_on_a_read_or_delete() {
    let server = TestServer::start().await;
    let user = json!({"user": {"email": "someone@example.com"}});
    for (method, path, body, field) in [
        ("POST", "/api/user/not-a-uuid", user.clone(), "userId"),
        ("PUT", "/api/user/not-a-uuid", user.clone(), "userId"),
        ("PATCH", "/api/user/not-a-uuid", user, "userId"),
        (
            "PUT",
            "/api/tenant/not-a-uuid",
            json!({"tenant": {"name": "T"}}),
            "tenantId",
        ),
        (
            "POST",
            "/api/user/two-factor/not-a-uuid",
            json!({"method": "authenticator", "code": "123456"}),
            "userId",
        ),
        (
            "POST",
            "/api/application/not-a-uuid/role",
            json!({"role": {"name": "r"}}),
            "applicationId",
        ),
    ] {
        server
            .call(method, path, ADMIN_KEY, Some(body))
            .await
            .assert_error_code(&format!("[invalid]{field}"));
    }
    for (method, path) in [
        ("GET", "/api/user/not-a-uuid"),
        ("DELETE", "/api/user/not-a-uuid"),
        (
            "DELETE",
            "/api/user/two-factor/not-a-uuid?methodId=x&code=123456",
        ),
        ("GET", "/api/user/two-factor/recovery-code/not-a-uuid"),
        ("DELETE", "/api/jwt/refresh/not-a-uuid"),
        ("GET", "/not-a-uuid/.well-known/openid-configuration"),
    ] {
        let response = server.call(method, path, ADMIN_KEY, None).await;
        assert_eq!(
            response.status.as_u16(),
            404,
            "{method} {path}: {}",
            response.text
        );
    }
}
