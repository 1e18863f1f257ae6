//! Property tests of the HTTP edge, in process: random JSON shapes, random form-encoded fields
//! (the hosted pages' forms, often with a CSRF token its cookie matches, so that they get past
//! the check), random bytes, random header sets and random ids, thrown at every route of the
//! table. Whatever arrives, the answer is never a 5xx (a panic would answer 500, S25), an API's
//! body is always JSON, and a 4xx changes nothing in the store (429 counts a rate window, which
//! is its point, and so does a short code answered "not right", which counts a try, S7, S33).
//!
//! 10 000 cases per route by default; a longer run:
//! `PROPTEST_CASES=1000000 cargo test -p passwordless --test integration robustness --release`

use crate::support;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};
use std::sync::Arc;

use passwordless::adapters::clock::SystemClock;
use passwordless::adapters::entropy::OsEntropy;
use passwordless::adapters::keys::AwsLcKeyMaker;
use passwordless::adapters::outbox::OutboxMailer;
use passwordless::adapters::sqlite::SqliteStore;
use passwordless::app::{App, AppParts};
use passwordless::domain::tenant::DEFAULT_TENANT_ID;
use passwordless::domain::{ApiKeyPermissions, Secret};
use passwordless::flows::management::create_api_key;
use passwordless::http::routes::{Route, ROUTES};
use passwordless::http::{handle, HttpRequest};

const START_ONLY_KEY: &str = "robustness-start-only-key-0123456789";

/// The field names the API reads, so that random objects reach past the first check.
const FIELDS: &[&str] = &[
    "code",
    "oneTimeCode",
    "applicationId",
    "loginId",
    "loginIdTypes",
    "loginStrategy",
    "state",
    "noJWT",
    "ipAddress",
    "metaData",
    "twoFactorTrustId",
    "tenant",
    "application",
    "refreshToken",
    "algorithm",
    "apiKey",
    "key",
    "permissions",
    "endpoints",
    "metaData",
    "expirationInstant",
    "search",
    "queryString",
    "numberOfResults",
    "startRow",
    "role",
    "isDefault",
    "data",
    "verifyRegistration",
    "user",
    "registration",
    "emailTemplate",
    "name",
    "issuer",
    "email",
    "username",
    "firstName",
    "lastName",
    "fullName",
    "roles",
    "tenantId",
    "id",
    "passwordlessConfiguration",
    "enabled",
    "jwtConfiguration",
    "accessTokenKeyId",
    "idTokenKeyId",
    "signingAlgorithm",
    "externalIdentifierConfiguration",
    "passwordlessLoginGenerator",
    "length",
    "type",
    "passwordlessLoginTimeToLiveInSeconds",
    "defaultSubject",
    "defaultTextTemplate",
    "defaultHtmlTemplate",
    "defaultFromName",
    "fromEmail",
    "localizedSubjects",
    "skipVerification",
    "rateLimitConfiguration",
    "sendPasswordless",
    "limit",
    "timePeriodInSeconds",
    "emailConfiguration",
    "passwordlessEmailTemplateId",
    "defaultFromEmail",
    "oauthConfiguration",
    "authorizedRedirectURLs",
    "active",
    "expiry",
    "preferredLanguages",
    "data",
    "isDefault",
];

/// The field names the hosted pages' forms and the OAuth endpoints read.
const FORM_FIELDS: &[&str] = &[
    "csrf",
    "code",
    "email",
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "locale",
    "login_hint",
    "twoFactorId",
    "trustComputer",
    "enrolSecret",
    "sendCode",
    "methodId",
    "confirm",
    "grant_type",
    "refresh_token",
    "code_verifier",
    "client_secret",
    "token",
    "verificationId",
    "oneTimeCode",
    "id_token_hint",
    "post_logout_redirect_uri",
];

/// A CSRF token (43 characters of base64url) and the cookie that holds it on the fixture's
/// https public URL.
const CSRF: &str = "robustnessCsrfToken0123456789abcdefghijklmn";

struct Fixture {
    app: App,
    store: Arc<SqliteStore>,
    application: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db")).unwrap());
    let app = App::from_parts(AppParts {
        store: store.clone(),
        key_vault: Arc::new(support::test_vault()),
        mailer: Arc::new(OutboxMailer::new(
            dir.path().join("outbox"),
            Arc::new(SystemClock),
        )),
        clock: Arc::new(SystemClock),
        entropy: Arc::new(OsEntropy),
        key_maker: Arc::new(AwsLcKeyMaker),
        public_url: "https://login.example".into(),
    })
    .await
    .unwrap();
    let application = support::seed(&app, "known@example.com").await.to_string();
    let permissions = ApiKeyPermissions {
        endpoints: [(
            "/api/passwordless/start".to_owned(),
            vec!["POST".to_owned()],
        )]
        .into(),
    };
    create_api_key(
        app.store.as_ref(),
        app.entropy.as_ref(),
        app.clock.as_ref(),
        &Secret::new(START_ONLY_KEY),
        "start only",
        Some(permissions),
        None,
        passwordless::http::routes::is_permissible,
    )
    .await
    .unwrap();
    Fixture {
        app,
        store,
        application,
        _dir: dir,
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        ".{0,48}",
        Just("known@example.com".to_owned()),
        Just("Eve\r\nBcc: victim@example.com".to_owned()),
        Just("{{ range(100000) }}".to_owned()),
        Just(DEFAULT_TENANT_ID.to_string()),
        "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    ]
}

fn json_value(application: String) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::from),
        Just(Value::from(application)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            4 => proptest::sample::select(FIELDS).prop_map(str::to_owned),
            1 => "[a-zA-Z]{1,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Form-encoded fields, named as the forms name them, valued at random or as a real request
/// would be.
fn form(application: String) -> impl Strategy<Value = Bytes> {
    let key = prop_oneof![
        6 => proptest::sample::select(FORM_FIELDS).prop_map(str::to_owned),
        1 => "[a-zA-Z_]{1,12}",
    ];
    let value = prop_oneof![
        3 => text(),
        1 => Just(CSRF.to_owned()),
        1 => Just(application),
        1 => Just("https://app.example/callback".to_owned()),
        1 => Just("code".to_owned()),
        1 => Just("authorization_code".to_owned()),
        1 => "[0-9]{6}",
    ];
    proptest::collection::vec((key, value), 0..10).prop_map(|pairs| {
        Bytes::from(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish(),
        )
    })
}

fn body(application: String) -> impl Strategy<Value = Bytes> {
    prop_oneof![
        3 => json_value(application.clone()).prop_map(|v| Bytes::from(v.to_string())),
        2 => form(application),
        1 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(Bytes::from),
        1 => Just(Bytes::new()),
    ]
}

fn path_for(pattern: &'static str) -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just(DEFAULT_TENANT_ID.to_string()),
        "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        "[a-zA-Z0-9%._~-]{1,40}",
    ];
    let holes = pattern.matches('{').count();
    proptest::collection::vec(segment, holes).prop_map(move |values| {
        let mut values = values.into_iter();
        pattern
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    values.next().unwrap_or_default()
                } else {
                    part.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    })
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let authorization = prop_oneof![
        Just(support::KEY.to_owned()),
        Just(START_ONLY_KEY.to_owned()),
        "[ -~]{0,40}",
    ];
    let tenant = prop_oneof![
        Just(DEFAULT_TENANT_ID.to_string()),
        "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        "[ -~]{0,40}",
    ];
    let content_type = prop_oneof![
        Just("application/json".to_owned()),
        Just("application/x-www-form-urlencoded".to_owned()),
        "[ -~]{0,30}",
    ];
    // The pages' cookies: the CSRF token the forms may repeat, and a pending login's hash and a
    // browser binding, real in shape and naming nothing.
    let cookie = prop_oneof![
        Just(format!("__Host-passwordless-csrf={CSRF}")),
        "[0-9a-f]{64}".prop_map(|pending| format!(
            "__Host-passwordless-csrf={CSRF}; __Host-passwordless-pending={pending}"
        )),
        "[ -~]{0,60}",
    ];
    let origin = prop_oneof![Just("https://app.example".to_owned()), "[ -~]{0,40}"];
    let preflight_method = prop_oneof![Just("POST".to_owned()), "[ -~]{0,12}"];
    (
        (
            proptest::option::of(authorization),
            proptest::option::of(tenant),
            proptest::option::of(content_type),
            proptest::option::of("[ -~]{0,60}"),
        ),
        (
            proptest::option::of(origin),
            proptest::option::of(preflight_method),
            proptest::option::of("[ -~]{0,60}"),
            proptest::option::of(cookie),
        ),
    )
        .prop_map(
            |(
                (authorization, tenant, content_type, forwarded),
                (origin, asked_method, asked_headers, cookie),
            )| {
                [
                    ("authorization", authorization),
                    ("x-fusionauth-tenantid", tenant),
                    ("content-type", content_type),
                    ("x-forwarded-for", forwarded),
                    ("origin", origin),
                    ("access-control-request-method", asked_method),
                    ("access-control-request-headers", asked_headers),
                    ("cookie", cookie),
                ]
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v)))
                .collect()
            },
        )
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
    ]
}

/// Throws `PROPTEST_CASES` (10 000 by default) random requests at one route.
fn route_survives_anything(route: Route) {
    let spec = ROUTES.iter().find(|s| s.route == route).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fixture = runtime.block_on(fixture());
    let own_method: Method = spec.method.parse().unwrap();
    let method = prop_oneof![9 => Just(own_method), 1 => method()];
    let query = proptest::option::of(prop_oneof![
        Just("email=known%40example.com".to_owned()),
        "(email|loginId|username)=[ -~]{0,30}",
        "[ -~]{0,40}",
    ]);
    let request = (
        method,
        path_for(spec.path),
        query,
        headers(),
        body(fixture.application.clone()),
    );
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&request, |(method, path, query, headers, body)| {
            let mut map = HeaderMap::new();
            for (name, value) in &headers {
                if let Ok(value) = HeaderValue::from_str(value) {
                    map.insert(HeaderName::from_static(name), value);
                }
            }
            let before = fixture.store.changes();
            let response = runtime.block_on(handle(
                &fixture.app,
                HttpRequest {
                    method: method.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    headers: map,
                    body: body.clone(),
                    source_ip: Some([203, 0, 113, 7].into()),
                    request_id: "robustness".into(),
                },
            ));
            let status = response.status().as_u16();
            let shown = || {
                format!(
                    "{method} {path}?{query:?} {headers:?} {:?} -> {status} {:?}",
                    String::from_utf8_lossy(&body),
                    String::from_utf8_lossy(response.body())
                )
            };
            prop_assert!(status < 500, "a 5xx: {}", shown());
            // Hosted pages answer HTML; every API answers JSON.
            let html = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
            if !response.body().is_empty() && !html {
                let json: Result<Value, _> = serde_json::from_slice(response.body());
                prop_assert!(json.is_ok(), "not JSON: {}", shown());
            }
            // A short code answered "not right" counts a try against its login and its source.
            let counted_try = status == 400 && route == Route::OneTimeCodeComplete;
            if (400..500).contains(&status) && status != 429 && !counted_try {
                prop_assert_eq!(
                    fixture.store.changes(),
                    before,
                    "a {} changed the store: {}",
                    status,
                    shown()
                );
            }
            Ok::<(), TestCaseError>(())
        })
        .unwrap();
    // The fixture still serves a real request afterwards (S25).
    let start = runtime.block_on(handle(
        &fixture.app,
        support::post(
            "/api/passwordless/start",
            true,
            json!({"applicationId": fixture.application, "loginId": "known@example.com"}),
        ),
    ));
    assert_eq!(start.status(), 200);
}

/// One property test per route of the table, named after the route: a route added to the
/// table gets its test without another line here.
macro_rules! property_test_per_route {
    ($($route:ident),+) => {
        $(
            #[allow(non_snake_case)]
            mod $route {
                #[test]
                fn s11_s25_survives_anything() {
                    super::route_survives_anything(super::Route::$route);
                }
            }
        )+
    };
}

passwordless::for_each_route!(property_test_per_route);
