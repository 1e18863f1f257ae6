//! The store conformance suite on DynamoDB, served on loopback by moto through the real SDK
//! client (`AWS_ENDPOINT_URL`, set by the test command), and the round-trip budget.

use crate::conformance;
use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::RequestLog;
use passwordless::adapters::dynamodb::{DynamoStore, Tables};
use passwordless::ports::Store;

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL must point at the DynamoDB emulator: run `bash scripts/test.sh`, which starts one")
}

static PREFIX: AtomicUsize = AtomicUsize::new(0);

/// A store on fresh tables, with every request it sends logged.
pub async fn store() -> (Arc<DynamoStore>, RequestLog) {
    endpoint();
    let aws = aws_config::load_from_env().await;
    let log = RequestLog::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&aws)
        .interceptor(log.clone())
        .build();
    let prefix = format!(
        "conf{}-{}",
        std::process::id(),
        PREFIX.fetch_add(1, Ordering::Relaxed)
    );
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        Tables::with_prefix(&prefix),
    );
    store.create_tables().await.unwrap();
    log.take();
    (Arc::new(store), log)
}

conformance::conformance_suite!({
    let (store, log) = store().await;
    (store as Arc<dyn Store>, log)
});

#[tokio::test]
async fn creating_the_tables_twice_is_harmless() {
    let (store, _) = store().await;
    store.create_tables().await.unwrap();
}

/// The round-trip budget of CONTRIBUTING.md: start ≤ 2 DynamoDB requests (find user, write
/// code), login ≤ 2 (consume code, load-and-touch user), once a warm instance has the
/// configuration cached.
#[tokio::test]
async fn start_and_login_stay_within_two_dynamodb_requests_each() {
    use passwordless::adapters::clock::SystemClock;
    use passwordless::adapters::outbox::OutboxMailer;
    use serde_json::json;

    let (store, log) = store().await;
    let dir = tempfile::tempdir().unwrap();
    let app = support::app_on(
        store,
        Arc::new(OutboxMailer::new(dir.path(), Arc::new(SystemClock))),
    )
    .await;
    let application = support::seed(&app, "budget@example.com").await;
    log.take();
    let cycle = || async {
        let code = support::start(&app, application, "budget@example.com").await;
        let start_requests = log.take();
        let (status, _) = support::call(
            &app,
            support::post("/api/passwordless/login", false, json!({"code": code})),
        )
        .await;
        assert_eq!(status, 200);
        (start_requests, log.take())
    };
    // The first cycle fills the instance's configuration cache (key, application, tenant, signing key).
    let (cold_start, cold_login) = cycle().await;
    let (start, login) = cycle().await;
    println!("DynamoDB requests, cold instance: start {cold_start:?}, login {cold_login:?}");
    println!(
        "DynamoDB requests, warm instance: start {start:?} ({}), login {login:?} ({})",
        start.len(),
        login.len()
    );
    assert_eq!(
        start,
        ["Query", "TransactWriteItems"],
        "start: find the user, write the code"
    );
    assert_eq!(
        login,
        ["DeleteItem", "UpdateItem"],
        "login: consume the code, load-and-touch the user"
    );
}
